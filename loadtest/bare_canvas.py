"""The baseline for the browser load test: only the drawing canvas and a fixed answer.

    .venv/bin/python -m streamlit run loadtest/bare_canvas.py   # from the repo root

(``python -m`` puts the current folder on sys.path, so ``ui`` is found, as
loadtest/server.py starts it.)

The same canvas as the app (ui.drawing_canvas: same component, same
send-on-pointer-up), the same "Prediction" metric once something is drawn,
and nothing else: no classifier, no charts, no pictures.  Whatever latency a
browser sees here is the floor set by Streamlit, the canvas component and the
browsers themselves on this machine.
"""
import streamlit as st

import ui

st.set_page_config(page_title="Bare canvas", layout="wide")
left, right = st.columns([4, 7])
with left:
    st.write("")  # room for the canvas' toolbar, as on the Draw page
    image = ui.drawing_canvas(key="canvas")
with right:
    if image is not None and image[:, :, :3].any():
        st.metric("Prediction", "7")
    else:
        st.info("Draw a digit in the box.")
