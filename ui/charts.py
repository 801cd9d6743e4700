"""The vote chart (one bar per class) and the colours the pages share for votes."""
from __future__ import annotations

import numpy as np
import streamlit as st

WINNER_COLOUR, TIED_COLOUR, OTHER_COLOUR = "#2E7D32", "#F39C12", "#B0BEC5"
WRONG_COLOUR, TRUE_COLOUR = "#C62828", "#1565C0"

# The vote chart is redrawn from scratch in every browser on every stroke of the Draw page (a new
# vote is a new chart to Streamlit), so it is kept cheap to draw (loadtest/README.md): a static
# plot (no hover or zoom layers), no Streamlit theme to merge in (theme=None, the "none" template
# and the few colours below), fixed axis ranges, no axis titles (the title says what the bars are).
VOTE_CHART_CONFIG = {"displayModeBar": False, "staticPlot": True}
_CHART_FONT = {"family": '"Source Sans", "Source Sans Pro", sans-serif', "size": 12, "color": "#1B1F1C"}


def vote_figure(scores, classes, winner, *, tied=(), weights: str = "uniform", true_label=None,
                height: int = 230) -> dict:
    """One vote as a bar chart per class (a plain plotly dict): the winner green (red when
    true_label is given and differs), tied classes orange, the true class blue, each bar
    labelled with its vote. Show it with :func:`vote_chart`."""
    classes = np.asarray(classes).tolist()
    scores = np.asarray(scores, dtype=float).tolist()
    wrong = true_label is not None and winner != true_label
    colours = [(WRONG_COLOUR if wrong else WINNER_COLOUR) if c == winner else TRUE_COLOUR if c == true_label
               else TIED_COLOUR if c in tied else OTHER_COLOUR for c in classes]
    weighted = weights == "distance"
    top = max(scores, default=0.0)
    return {
        "data": [{
            "type": "bar", "x": [str(c) for c in classes], "y": scores, "marker": {"color": colours},
            "text": [f"{s:.3g}" if s else "" for s in scores], "textposition": "outside", "cliponaxis": False,
            "hoverinfo": "skip",
        }],
        "layout": {
            "template": "none", "font": _CHART_FONT,
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "title": {"text": "Vote per class (sum of 1/distance)" if weighted else "Votes per class",
                      "font": {"size": 14}, "x": 0, "xref": "paper"},
            "height": height, "margin": {"l": 36, "r": 8, "t": 32, "b": 24},
            "xaxis": {"type": "category", "fixedrange": True, "showgrid": False, "ticks": ""},
            "yaxis": {"range": [0, 1.2 * top if top > 0 else 1.0], "fixedrange": True, "gridcolor": "#E3E8E4",
                      "zeroline": False, "ticks": "", **({} if weighted else {"dtick": max(1, round(top / 4))})},
            "showlegend": False, "hovermode": False, "dragmode": False,
        },
    }


def vote_chart(scores, classes, winner, *, key: str, tied=(), weights: str = "uniform", true_label=None,
               height: int = 230) -> None:
    """Show :func:`vote_figure` the cheap way (see VOTE_CHART_CONFIG)."""
    st.plotly_chart(vote_figure(scores, classes, winner, tied=tied, weights=weights, true_label=true_label,
                                height=height),
                    key=key, config=VOTE_CHART_CONFIG, theme=None)
