"""The drawing canvas shared by the pages that draw, and what a drawing becomes.

:func:`drawing_canvas` shows the black 280 x 280 canvas and returns the drawing
(or None, or an ``st.error`` for anything that is not a drawing);
:func:`drawing_from_bytes` checks and decodes what the browser sent;
:func:`drawing_stages` / :func:`drawing_to_mnist` turn a drawing into the
28x28 digit the pages classify.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from knn_core import EmptyDrawingError, ImageError, canvas_from_png
from knn_core.normalize import MNIST_STROKE, Stages, canvas_to_mnist_stages

from .safe import md_escape

# Drawings: strokes thinner than MNIST's (a thin pen on a big digit) are thickened to MNIST's typical
# width first. On 2,000 redrawn test digits this took a thin pen from 91.3% to 97.1% and a normal one
# from 96.6% to 97.5% (README, "Drawings, robustness and latency"); MNIST-thick strokes are untouched.
DRAWING_MIN_STROKE = MNIST_STROKE


def drawing_stages(image) -> Stages:
    """A canvas drawing -> the MNIST-style stages the pages classify (see DRAWING_MIN_STROKE)."""
    return canvas_to_mnist_stages(image, min_stroke=DRAWING_MIN_STROKE)


def drawing_to_mnist(image) -> np.ndarray:
    """A canvas drawing -> the 28x28 digit the pages classify."""
    return drawing_stages(image).centred


def drawn_digit(image) -> np.ndarray | None:
    """A drawing (or None) -> its 28x28 digit; None when there is none or it has no ink, and an st.error
    naming the problem when it is not a usable picture."""
    if image is None:
        return None
    try:
        return drawing_to_mnist(image)
    except EmptyDrawingError:
        return None
    except ImageError as exc:
        st.error(f"Can't use this drawing: {md_escape(exc)}", icon="🚫")
        return None


CANVAS_SIZE = 280
PEN_DEFAULT = 18

# Small fixes to the canvas component, from the page (its code is in a shadow root):
# 1. With update_streamlit=True it shows its toolbar (undo, redo, clear) only while the
#    pointer is over it; CSS in its shadow root keeps the toolbar visible, hides its
#    "Update the app" button (2. presses it for the user) and, for a finger (pointer:
#    coarse), makes the buttons 44 px touch targets instead of 22 px; the canvas' box
#    then leaves them room above it (TOOLBAR_ROOM).
# 2. It sends a finished stroke to Python only after a 200 ms debounce.  When a stroke
#    ends (pointer up after a pointer down on the drawing surface) we press the
#    toolbar's own "Update the app with this drawing" button, which sends the same
#    drawing at once and cancels the pending send.
# Both degrade gracefully: if the component changes, nothing matches, the toolbar
# still shows on hover and strokes still arrive after the debounce.  They apply to
# every canvas inside a container whose key ends in "canvas_box" (see drawing_canvas).
_CANVAS_TWEAKS = """<script>
(function () {
  if (window.__knnCanvasTweaks) return;
  window.__knnCanvasTweaks = true;
  const HOSTS = '[class*="st-key-"][class*="canvas_box"] [data-testid="stBidiComponentIsolated"]';
  const CSS = ".dc-toolbar{opacity:1 !important;top:-2.65rem !important}" +
    '.dc-icon-button[aria-label="Update the app with this drawing"]{display:none !important}' +
    "@media (pointer: coarse){.dc-toolbar{top:-3.6rem !important}" +
    ".dc-icon-button{width:44px !important;height:44px !important}" +
    ".dc-icon-button svg{width:24px !important;height:24px !important}}";
  const TOOLBAR_ROOM = "@media (pointer: coarse){" + HOSTS.split(" ")[0] + "{padding-top:1rem}}";
  if (!document.querySelector("style[data-knn-canvas-room]")) {
    const s = document.createElement("style");
    s.setAttribute("data-knn-canvas-room", "1");
    s.textContent = TOOLBAR_ROOM;
    document.head.appendChild(s);
  }
  function pin() {
    document.querySelectorAll(HOSTS).forEach(function (host) {
      const root = host.shadowRoot;
      if (root && !root.querySelector("style[data-knn-pin]")) {
        const s = document.createElement("style");
        s.setAttribute("data-knn-pin", "1");
        s.textContent = CSS;
        root.appendChild(s);
      }
    });
  }
  pin();
  setInterval(pin, 400);
  let stroke = null;
  document.addEventListener("pointerdown", function (ev) {
    stroke = null;
    const path = ev.composedPath();
    const surface = path.find(function (el) {
      return el.classList && el.classList.contains("upper-canvas");
    });
    if (!surface) return;
    const host = path.find(function (el) { return el.matches && el.matches(HOSTS); });
    if (host) stroke = host;
  }, true);
  window.addEventListener("pointerup", function () {
    const host = stroke;
    stroke = null;
    if (!host || !host.shadowRoot) return;
    setTimeout(function () {  // after the canvas has added the stroke
      const send = host.shadowRoot.querySelector(
        'button[aria-label="Update the app with this drawing"]');
      if (send && !send.disabled) send.click();
    }, 0);
  });
})();
</script>"""


class DrawingError(ValueError):
    """What the browser sent as the canvas' drawing is not a usable picture."""


def drawing_canvas(key: str = "canvas", pen_width: int = PEN_DEFAULT) -> np.ndarray | None:
    """The black 280 x 280 drawing canvas, in a container keyed ``f"{key}_box"``.

    Returns the drawing as a (280, 280, 4) uint8 RGBA array (white ink on
    black), or None before the first stroke.  Whatever a client sends as the
    canvas' value (not a PNG, an enormous picture, a malformed drawing)
    becomes an ``st.error`` and None, never an exception.
    """
    from streamlit_drawable_canvas import st_canvas  # needs a running Streamlit

    with st.container(key=f"{key}_box"):
        st.html(_CANVAS_TWEAKS, unsafe_allow_javascript=True)
        try:
            result = st_canvas(
                fill_color="rgba(0, 0, 0, 0)",
                stroke_width=int(pen_width),
                stroke_color="#FFFFFF",
                background_color="#000000",
                height=CANVAS_SIZE,
                width=CANVAS_SIZE,
                drawing_mode="freedraw",
                update_streamlit=True,
                return_image_data=True,
                key=key,
            )
            return drawing_from_bytes(result.image_bytes)
        except (DrawingError, AttributeError, TypeError, KeyError, ValueError) as exc:
            reason = md_escape(exc) if isinstance(exc, DrawingError) else "it is not a drawing from this canvas"
            st.error(f"Can't read this drawing: {reason}. Clear the canvas (🗑 in its toolbar) "
                     "and draw again.", icon="🚫")
            return None


def drawing_from_bytes(data: bytes | None) -> np.ndarray | None:
    """The canvas' PNG -> an array (knn_core.canvas_from_png: PNG only, canvas-sized, size read from the
    header before anything is decoded); DrawingError with the reason for anything else."""
    if data is None:
        return None
    try:
        return canvas_from_png(data)
    except ImageError as exc:
        raise DrawingError(str(exc)) from exc
