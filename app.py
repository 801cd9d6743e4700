"""kNN Digit Lab: the entry point (`streamlit run app.py`). Wiring only.

To add a page, add one line to PAGES; page code lives in pages/.
"""
import streamlit as st

import ui

st.set_page_config(page_title="kNN Digit Lab", page_icon="🔢", layout="wide")
ui.start_server()  # once per process: one BLAS thread per run, the default classifier fitted: ui/resources.py

# ---- The pages, one per line, in menu order. ---------------------------------
PAGES = [
    st.Page("pages/draw.py", title="Draw", icon="✏️", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon="🔍"),
    st.Page("pages/neighbour_vote.py", title="Neighbour vote", icon="🗳️"),
    st.Page("pages/confusion.py", title="Confusion matrix", icon="🎯"),
    st.Page("pages/k_sweep.py", title="Choosing k", icon="📈"),
    st.Page("pages/misclassified.py", title="Misclassified", icon="❌"),
    st.Page("pages/suspicious.py", title="Suspicious labels", icon="🏷️"),
    st.Page("pages/baselines.py", title="Baselines", icon="📊"),
    st.Page("pages/class_room.py", title="Class", icon="🧑‍🏫"),
]
# ------------------------------------------------------------------------------

# Pages opened mostly on phones, to draw: their sidebar draws the settings' widgets only when asked
# ("Change the settings"), which spares a phone seconds of JavaScript before the canvas shows.
SETTINGS_ON_DEMAND = {"Draw"}

page = st.navigation(PAGES, position="hidden")
ui.page_menu(PAGES)  # our menu, not Streamlit's: see ui/navigation.py
with ui.shared_sidebar(on_demand=page.title in SETTINGS_ON_DEMAND):  # pages read them with ui.current_settings()
    page.run()
