"""The Draw page: draw (or upload) a digit, see what the kNN classifier makes of it and why.

Everything is in :func:`draw_page`; tests call it with a drawing or an upload
instead of the canvas (the canvas only exists in a browser).
"""
from __future__ import annotations

import html

import cv2
import numpy as np
import streamlit as st

import ui
from knn_core import EmptyDrawingError, ImageError
from knn_core.normalize import Stages
from knn_core.photo import photo_to_mnist_stages

STAGE_SIDE = 112  # px of each preprocessing-stage picture (28 x 4)
PAGE_COLOUR = (241, 245, 242)  # the theme's secondaryBackgroundColor


def draw_page(image: np.ndarray | None = None, upload=None) -> None:
    """Render the page.

    image: an RGBA/RGB/grey drawing to classify instead of the canvas (tests).
    upload: PNG/JPEG bytes (or a file-like with getvalue()) instead of the
    file uploader (tests).  An upload, when present, is classified instead of
    the drawing.
    """
    settings = ui.current_settings()
    st.title("✏️ Draw a digit")
    st.caption("Draw one digit, big, in the black box. The prediction updates when you lift the pen. "
               "Undo and clear are in the toolbar above the box.")
    pen, photo = st.columns([4, 7], gap="large")
    with pen:
        st.slider("Pen width", 6, 40, ui.PEN_DEFAULT, key="pen_width",
                  help="Stroke width in canvas pixels (the box is 280 x 280).")
    if upload is None:
        with photo:
            upload = st.file_uploader(
                "Or classify a photo or scan of a digit on paper", type=["png", "jpg", "jpeg"],
                help="Dark ink on light paper (or the reverse), one digit, PNG or JPEG up to 5 MB.",
            )
    _draw_and_classify(settings, image, upload)


# A stroke reruns only this fragment: the title, the pen and upload controls, the sidebar and the
# page menu stay as they are, in the server and in the browser. With thirty students drawing, the
# browsers' CPU runs out first (loadtest/README.md), and every element re-sent is one more that each
# browser redraws. Whatever is outside changes only by a full rerun, which hands the fragment the
# new settings and upload.
@st.fragment
def _draw_and_classify(settings: ui.Settings, image: np.ndarray | None, upload) -> None:
    left, right = st.columns([4, 7], gap="large")
    with left:
        st.write("")  # room for the canvas' floating toolbar, which sits above the canvas
        if image is None:
            image = _canvas()  # in a container keyed "canvas_box"
    with right:
        stages = _preprocess(image, upload)
        if stages is not None:
            _show_result(stages, settings)


def _canvas() -> np.ndarray | None:
    """The shared drawing canvas (ui.drawing_canvas: it also turns a garbage drawing into a message)."""
    return ui.drawing_canvas(key="canvas", pen_width=int(st.session_state.get("pen_width", ui.PEN_DEFAULT)))


def _preprocess(image, upload) -> Stages | None:
    """The picture -> MNIST stages, or None after showing why there is nothing to classify."""
    if upload is not None:
        data = upload.getvalue() if hasattr(upload, "getvalue") else upload
        name = ui.shown(getattr(upload, "name", "the upload"))
        st.caption(f"Classifying **{name}**. Remove it (✕ next to its name) to classify your drawing.")
        try:
            return photo_to_mnist_stages(data)
        except ImageError as exc:
            st.error(f"Can't read {name} as a picture of a digit: {ui.md_escape(exc)}. "
                     "Upload a PNG or JPEG photo or scan of one digit.", icon="🚫")
        except EmptyDrawingError:
            st.info(f"No ink found in {name}. Is there a dark digit on light paper in it, "
                    "reasonably sharp and well lit?", icon="🔍")
        return None
    if image is None:
        st.info("Draw a digit in the box.", icon="✏️")
        return None
    try:
        return ui.drawing_stages(image)
    except EmptyDrawingError:
        st.info("Draw a digit in the box.", icon="✏️")
    except ImageError as exc:
        st.error(f"Can't use this drawing: {ui.md_escape(exc)}", icon="🚫")
    return None


# A stroke redraws the whole result in every student's browser, and on a projector-and-30-laptops
# server the browsers' CPU is what runs out first (loadtest/README.md): so the result is a few
# elements, each holding a lot (a metric, two HTML blocks, the chart), not a dozen small ones.
CAPTION_STYLE = "font-size:0.875rem;opacity:0.7;margin:0 0 0.5rem 0"


def _show_result(stages: Stages, settings: ui.Settings) -> None:
    digit = stages.centred
    clf = ui.classifier(settings)
    nb = ui.nearest(clf, digit, settings)
    vote = clf.explain(nb.distances, nb.indices)

    summary, chart = st.columns([2, 3], gap="medium")
    with summary:
        st.metric("Prediction", vote.winner)  # first: users and browser tests read it here
        if vote.was_tied:
            st.warning(f"**Tied vote.** {vote.describe()}", icon="⚖️")
        st.html(_summary_html(vote, settings))
    with chart:
        counts = [int(np.sum(nb.labels == c)) for c in clf.classes_]
        st.html(ui.vote_bars_html(vote.scores, clf.classes_, vote.winner, counts=counts, tied=vote.tied_classes,
                                  weights=settings.weights))
    with st.container(key="neighbours"):
        st.html(_neighbours_html(nb, digit, vote.winner, settings))

    # Drawn only while open (on_change="rerun" makes the expander report that): built and sent on
    # every stroke, the stages cost the server and every browser for a section usually closed.
    stages_box = st.expander("Preprocessing stages", key="stages_open", on_change="rerun")
    if stages_box.open:
        with stages_box:
            _show_stages(stages)


def _summary_html(vote, settings: ui.Settings) -> str:
    """The settings behind the prediction and, unless tied (then a warning says it), how the vote went."""
    lines = [f"k={settings.k}, {settings.distance_label}, {settings.weights} votes, "
             f"{settings.size:,} training digits"]
    if not vote.was_tied:
        lines.append(vote.describe())
    return "".join(f'<p class="draw-summary" style="{CAPTION_STYLE}">{html.escape(t)}</p>' for t in lines)


def _neighbours_html(nb: ui.Neighbours, digit: np.ndarray, winner, settings: ui.Settings) -> str:
    """The digit as the model sees it beside its k nearest training digits, with a heading and a
    caption saying how to read them: one HTML element."""
    how = "" if settings.method == ui.CLASSIC else " Shown as the method compared them"
    if nb.shifts is not None:
        how += ", each at the shift that matched best (a digit may appear at several shifts and vote for each)"
    caption = (f"Nearest first, by {nb.distance_name} (d). Framed in green with ✓: the neighbours that voted "
               f"for {winner}.{how}{'.' if how else ''}")
    if settings.method == ui.CLASSIC:
        views, view_captions = [digit], ["What the model sees (28×28)"]
    else:
        h, w = nb.query.shape
        views, view_captions = [digit, nb.query], ["Your digit (28×28)", f"As the method compares it ({w}×{h})"]
    captions, borders, alts = ui.neighbour_captions(nb.labels, nb.distances, winner, nb.shifts)
    return ('<h3 style="margin:0.25rem 0 0.25rem 0;font-size:1.5rem;font-weight:600">'
            + (f'The {len(nb.indices)} nearest training digits' if len(nb.indices) != 1 else 'The nearest training digit')
            + '</h3>'
            f'<p style="{CAPTION_STYLE}">{html.escape(caption)}</p>'
            + ui.digits_beside_neighbours_html(views, view_captions, nb.images, captions, borders, alts,
                                               scale=4 if len(views) == 1 else 3, nb_scale=3))


def _stage_tile(a: np.ndarray, side: int = STAGE_SIDE) -> np.ndarray:
    """A stage picture on a side x side RGB tile: small ones enlarged by whole pixels (crisp),
    big ones shrunk smoothly, centred on the page colour (so the stages line up)."""
    a = ui.to_uint8(a)
    h, w = a.shape[:2]
    if max(h, w) <= side:
        a = ui.enlarge(a, max(1, side // max(h, w)))
    else:
        s = side / max(h, w)
        a = cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    tile = np.empty((side, side, 3), np.uint8)
    tile[:] = PAGE_COLOUR
    h, w = a.shape[:2]
    y, x = (side - h) // 2, (side - w) // 2
    tile[y : y + h, x : x + w] = a
    return tile


def _show_stages(stages: Stages) -> None:
    top, bottom, left, right = stages.bbox
    ink = ui.to_uint8(stages.ink)
    ink_rgb = np.repeat(ink[:, :, None], 3, axis=2)
    t = max(1, max(ink.shape) // 140)
    cv2.rectangle(ink_rgb, (left, top), (right - 1, bottom - 1), (231, 76, 60), t)
    tiles = [_stage_tile(ink_rgb), _stage_tile(stages.cropped), _stage_tile(stages.boxed),
             _stage_tile(stages.centred)]
    h, w = ink.shape
    ch, cw = stages.cropped.shape
    bh, bw = stages.boxed.shape
    captions = [
        f"1. ink ({w}×{h}) and its box",
        f"2. cropped to the box ({cw}×{ch})",
        f"3. scaled so the longer side is 20 px ({bw}×{bh})",
        "4. centre of mass moved to (14, 14) of 28×28",
    ]
    ui.digit_grid(tiles, captions, scale=1)
    st.caption("Like MNIST: the ink's box is scaled so its longer side is 20 px, then placed so "
               "its centre of mass is at the centre of a 28×28 field. Strokes thinner than MNIST's "
               "(1/8 of the box's longer side) are thickened first, in stage 1.")


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(draw_page)
