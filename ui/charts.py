"""The vote (one bar per class) as light HTML bars or as a Plotly chart, and the colours of votes.

The Draw page shows the vote as HTML bars (:func:`vote_bars_html`): on a phone,
Plotly's JavaScript costs seconds before the first prediction, and a stroke
redraws the vote in every student's browser. The analysis pages, where people
explore, keep Plotly (:func:`vote_chart`). Both show each class's share of the
vote (with distance weights the raw 1/distance sums mean nothing to people)
and how many neighbours it had.
"""
from __future__ import annotations

import html

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
    total = sum(scores) or 1.0
    if weighted:  # shares of the vote in %, not 1/distance sums
        ys, texts = [100 * v / total for v in scores], [f"{100 * v / total:.0f}%" if v else "" for v in scores]
        top, title = max(ys, default=0.0), "Share of the vote (weighted by 1/distance)"
        yaxis = {"ticksuffix": "%", "dtick": 25 if top > 50 else 10}
    else:  # whole votes: whole-number axis
        ys, texts = scores, [f"{v:.0f}" if v else "" for v in scores]
        top, title = max(ys, default=0.0), "Votes per class"
        yaxis = {"dtick": max(1, round(top / 4)), "tickformat": "d"}
    return {
        "data": [{
            "type": "bar", "x": [str(c) for c in classes], "y": ys, "marker": {"color": colours},
            "text": texts, "textposition": "outside", "cliponaxis": False, "hoverinfo": "skip",
        }],
        "layout": {
            "template": "none", "font": _CHART_FONT,
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "title": {"text": title, "font": {"size": 14}, "x": 0, "xref": "paper"},
            "height": height, "margin": {"l": 36, "r": 8, "t": 32, "b": 24},
            "xaxis": {"type": "category", "fixedrange": True, "showgrid": False, "ticks": ""},
            "yaxis": {"range": [0, 1.2 * top if top > 0 else 1.0], "fixedrange": True, "gridcolor": "#E3E8E4",
                      "zeroline": False, "ticks": "", **yaxis},
            "showlegend": False, "hovermode": False, "dragmode": False,
        },
    }


def vote_chart(scores, classes, winner, *, key: str, tied=(), weights: str = "uniform", true_label=None,
               height: int = 230) -> None:
    """Show :func:`vote_figure` the cheap way (see VOTE_CHART_CONFIG)."""
    st.plotly_chart(vote_figure(scores, classes, winner, tied=tied, weights=weights, true_label=true_label,
                                height=height),
                    key=key, config=VOTE_CHART_CONFIG, theme=None)


def vote_bars_html(scores, classes, winner, *, counts, tied=(), weights: str = "uniform", true_label=None) -> str:
    """One vote as light HTML bars (no JavaScript): per class its share of the vote and its neighbours.

    counts: how many of the k neighbours each class had. The winner is green
    (red when true_label is given and differs), tied classes orange, the true
    class blue; the bars' heights are the shares of the vote.
    """
    classes = np.asarray(classes).tolist()
    scores = np.asarray(scores, dtype=float)
    counts = np.asarray(counts).astype(int).tolist()
    total = float(scores.sum()) or 1.0
    shares = (scores / total).tolist()
    top = max(shares, default=0.0) or 1.0
    wrong = true_label is not None and winner != true_label
    k = sum(counts)
    title = ("Share of the vote (each neighbour weighs 1/distance)" if weights == "distance"
             else f"Votes of the {k} nearest neighbour{'s' if k != 1 else ''}")
    cols = []
    for c, share, n in zip(classes, shares, counts):
        colour = ((WRONG_COLOUR if wrong else WINNER_COLOUR) if c == winner else TRUE_COLOUR if c == true_label
                  else TIED_COLOUR if c in tied else OTHER_COLOUR)
        label = f"{share:.0%}" if weights == "distance" else str(n)
        sub = f"{n}×" if weights == "distance" and n else ""
        bold = "font-weight:700;" if c == winner else ""
        cols.append(
            f'<div class="vote-col" title="{html.escape(str(c))}: {n} neighbour{"s" if n != 1 else ""}, '
            f'{share:.0%} of the vote" style="flex:1;display:flex;flex-direction:column;align-items:center;'
            f'justify-content:flex-end;min-width:0">'
            f'<span class="vote-value" style="font-size:0.8rem;{bold}">{label if n else ""}</span>'
            f'<div style="width:70%;height:{max(share / top * 100, 0):.1f}px;background:{colour};'
            f'border-radius:3px 3px 0 0"></div>'
            f'<span class="vote-class" style="font-size:0.95rem;{bold}border-top:1px solid #B0BEC5;width:100%;'
            f'text-align:center">{html.escape(str(c))}</span>'
            f'<span style="font-size:0.7rem;opacity:0.75;height:0.9rem">{sub}</span></div>')
    summary = ", ".join(f"{c}: {n} ({s:.0%})" for c, s, n in zip(classes, shares, counts) if n)
    return (f'<figure class="vote-bars" role="img" aria-label="{html.escape(title)}: {html.escape(summary)}" '
            f'style="margin:0"><figcaption style="font-size:0.9rem;font-weight:600;margin-bottom:0.25rem">'
            f'{html.escape(title)}</figcaption>'
            f'<div style="display:flex;gap:2px;align-items:flex-end;height:140px">{"".join(cols)}</div></figure>')
