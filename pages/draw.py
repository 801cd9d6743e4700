"""The Draw page: draw (or upload) a digit, see what the kNN classifier makes of it and why.

Everything is in :func:`draw_page`; tests call it with a drawing or an upload
instead of the canvas (the canvas only exists in a browser).
"""
from __future__ import annotations

import hashlib
import html

import cv2
import numpy as np
import streamlit as st

import ui
from knn_core import EmptyDrawingError, ImageError
from knn_core.normalize import Stages
from knn_core.photo import photo_with_preview

STAGE_SIDE = 112  # px of each preprocessing-stage picture (28 x 4)
PAGE_COLOUR = (241, 245, 242)  # the theme's secondaryBackgroundColor
PHOTO_PREVIEW_SIDE = 72  # px: the uploaded photo beside the Prediction, when it is what is classified


def draw_page(image: np.ndarray | None = None, upload=None) -> None:
    """Render the page.

    image: an RGBA/RGB/grey drawing to classify instead of the canvas (tests).
    upload: PNG/JPEG bytes (or a file-like with getvalue()) instead of the
    file uploader (tests).  With both a drawing and a photo, the one changed
    last is classified (the photo when both are new): see :func:`_pick_source`.
    """
    settings = ui.current_settings()
    st.title("✏️ Draw a digit")
    st.caption("Draw one digit, big, in the black box: the prediction appears when you lift your finger or pen.")
    # Folded, so that on a phone the canvas and the Prediction under it fit in one screen.
    controls = st.expander("Pen width · or classify a photo instead", key="draw_controls", on_change="rerun")
    with controls:
        pen, photo = st.columns([4, 7], gap="medium")
        if controls.open:  # the pen's slider only when asked: see _pen_slider
            with pen:
                _pen_slider()
        if upload is None:  # always drawn: an upload lives only while its widget is on the page
            with photo:
                upload = st.file_uploader(
                    "A photo or scan of a digit on paper", type=["png", "jpg", "jpeg"],
                    help="Dark ink on light paper (or the reverse), one digit, PNG or JPEG up to 5 MB. "
                         "Drawing a new stroke classifies the drawing instead; clearing the box, the photo again.",
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
    with right:  # on a phone the columns stack: the Prediction comes right under the canvas
        use_photo = _pick_source(image, upload)
        stages = _preprocess(image if not use_photo else None, upload if use_photo else None)
        if stages is not None:
            _show_result(stages, settings, _source_html(upload, use_photo))


PEN = "draw_pen"  # session key: the pen width chosen, kept while its slider is folded away


def _pen_slider() -> None:
    """The pen width's slider, drawn only while its section is open: a slider is JavaScript (about
    150 kB with its number and date formatting) that a phone would otherwise fetch and run before
    the canvas shows (loadtest/README.md).  A widget's value goes when the widget is not drawn, so
    the width chosen is kept under PEN too."""
    state = st.session_state
    if "pen_width" not in state:
        state["pen_width"] = state.get(PEN, ui.PEN_DEFAULT)

    def keep():
        state[PEN] = state["pen_width"]

    st.slider("Pen width", 6, 40, key="pen_width", on_change=keep,
              help="Stroke width in canvas pixels (the box is 280 x 280).")


def _canvas() -> np.ndarray | None:
    """The shared drawing canvas (ui.drawing_canvas: it also turns a garbage drawing into a message)."""
    return ui.drawing_canvas(key="canvas", pen_width=int(st.session_state.get(PEN, ui.PEN_DEFAULT)))


def _has_ink(image: np.ndarray | None) -> bool:
    return image is not None and bool((image[:, :, :3] if image.ndim == 3 else image).any())


def _upload_id(upload) -> str | None:
    """What tells one upload from the next: Streamlit's file id, else a digest of the bytes (tests)."""
    if upload is None:
        return None
    file_id = getattr(upload, "file_id", None)
    if file_id:
        return str(file_id)
    data = upload.getvalue() if hasattr(upload, "getvalue") else upload
    return hashlib.blake2b(bytes(data), digest_size=16).hexdigest()


def _pick_source(image: np.ndarray | None, upload) -> bool:
    """True to classify the photo, False for the drawing: whichever the user changed last.

    A new upload takes over; so does a new stroke (the drawing changed and has ink).  A cleared
    canvas hands back to the photo, and with nothing new the previous choice stands.  Both new at
    once (a test handing in both) goes to the photo.
    """
    photo = _upload_id(upload)
    drawing = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() if _has_ink(image) else None
    seen_photo, seen_drawing, use_photo = st.session_state.get("draw_last_touched", (None, None, photo is not None))
    if photo is not None and photo != seen_photo:
        use_photo = True
    elif drawing is not None and drawing != seen_drawing:
        use_photo = False
    st.session_state["draw_last_touched"] = (photo, drawing, use_photo)
    return photo is not None and (use_photo or drawing is None)


def _source_html(upload, use_photo: bool) -> str:
    """Which picture the Prediction is about: the photo shown small when it is the one, and a line
    saying how to switch."""
    if upload is None:
        return ""
    name = html.escape(str(getattr(upload, "name", "the upload"))[:60])
    if not use_photo:
        return (f'<p class="draw-source" style="{ui.CAPTION_STYLE}">Classifying your <b>drawing</b> (changed last). '
                f"Clear the box to classify your photo <b>{name}</b> again.</p>")
    return (f'<div class="draw-source" style="display:flex;gap:0.5rem;align-items:center;margin:0 0 0.5rem 0">'
            f'{_photo_img(upload, name)}<p style="{ui.CAPTION_STYLE};margin:0">Classifying your photo <b>{name}</b>. '
            "Draw in the box to classify a drawing instead.</p></div>")


def _photo_img(upload, name: str) -> str:
    """The uploaded photo, small (an inline PNG made with its stages: see _photo)."""
    uri = _photo(upload)[1]
    if not uri:
        return ""
    return (f'<img src="{uri}" alt="your photo {name}" '
            f'style="max-width:{PHOTO_PREVIEW_SIDE}px;max-height:{PHOTO_PREVIEW_SIDE}px;border:1px solid #ccc">')


PHOTO_MEMO = "draw_photo"  # session key: (upload id, its stages or the error, its preview's data URI)


def _photo(upload) -> tuple:
    """(stages or the ImageError/EmptyDrawingError, preview data URI) of an upload, from one decode per
    upload: a stroke, a cleared box or a setting changed while the photo is there costs nothing more
    (a big PNG is ~0.1 s of decoding each time, and a student can repeat that as fast as they click)."""
    key = _upload_id(upload)
    memo = st.session_state.get(PHOTO_MEMO)
    if memo is None or memo[0] != key:
        data = upload.getvalue() if hasattr(upload, "getvalue") else upload
        try:
            stages, preview = photo_with_preview(data, side=PHOTO_PREVIEW_SIDE)
            memo = (key, stages, ui.png_data_uri(preview))
        except ImageError as exc:
            memo = (key, exc, "")
        st.session_state[PHOTO_MEMO] = memo
    return memo[1], memo[2]


def _preprocess(image, upload) -> Stages | None:
    """The picture -> MNIST stages, or None after showing why there is nothing to classify."""
    if upload is not None:
        name = ui.shown(getattr(upload, "name", "the upload"))
        stages = _photo(upload)[0]
        if isinstance(stages, ImageError):
            st.error(f"Can't read {name} as a picture of a digit: {ui.md_escape(stages)}. "
                     "Upload a PNG or JPEG photo or scan of one digit.", icon="🚫")
        elif isinstance(stages, EmptyDrawingError):
            st.info(f"No ink found in {name}. Is there a dark digit on light paper in it, "
                    "reasonably sharp and well lit?", icon="🔍")
        else:
            return stages
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


def _show_result(stages: Stages, settings: ui.Settings, source_html: str = "") -> None:
    shown = ui.show_prediction(stages.centred, settings, source_html)  # shared with the class room's student view
    ui.explain_expander(stages.centred, settings, shown, key="draw_explain")
    # Drawn only while open (on_change="rerun" makes the expander report that): built and sent on
    # every stroke, the stages cost the server and every browser for a section usually closed.
    stages_box = st.expander("Preprocessing stages", key="stages_open", on_change="rerun")
    if stages_box.open:
        with stages_box:
            _show_stages(stages)


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
               "(1/8 of the box's longer side) are thickened first, in stage 1, whose picture has a "
               "margin for that: a few pixels larger than the 280×280 box you draw in.")


if __name__ == "__main__":  # Streamlit runs page files as __main__; importing (tests) does not render
    ui.run_page(draw_page)
