"""Digit pictures: enlarged tiles, wrapping grids with captions (inline HTML), neighbour captions.

:func:`enlarge` (nearest-neighbour upscaling, so pixels stay crisp),
:func:`digit_tile` (optionally with a coloured frame), :func:`digit_grid` (many
digits with captions in one inline-HTML element) and the neighbour rows of the
analysis pages (:func:`neighbour_captions`, :func:`neighbour_grid`,
:func:`digit_with_neighbours`).
"""
from __future__ import annotations

import base64
import html
import re
from typing import Sequence

import cv2
import numpy as np
import streamlit as st

GREEN = (46, 204, 64)
GREY = (90, 90, 90)
RED = (198, 40, 40)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling (each pixel becomes a scale x scale block); keeps the dtype."""
    a = np.asarray(image)
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 stays; floats in [0, 1] are scaled to 0..255."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def digit_tile(image: np.ndarray, scale: int = 4, border: tuple | None = None, width: int = 3) -> np.ndarray:
    """A digit as an enlarged RGB tile, with a `width`-px frame of colour `border` if given."""
    g = enlarge(to_uint8(image), scale)
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    if border is not None:
        rgb = np.pad(rgb, ((width, width), (width, width), (0, 0)))
        rgb[:width], rgb[-width:], rgb[:, :width], rgb[:, -width:] = border, border, border, border
    return rgb


def png_data_uri(image: np.ndarray) -> str:
    """A grey (H, W) or RGB (H, W, 3) image as an inline PNG data URI."""
    a = to_uint8(image)
    if a.ndim == 3:
        a = np.ascontiguousarray(a[:, :, ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot encode an image of shape {a.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def rgb_css(colour: tuple) -> str:
    """An (r, g, b) colour as CSS (and plotly) text."""
    return "rgb({}, {}, {})".format(*colour)


def _caption_html(text: str) -> str:
    """Plain text, with **bold** and line breaks (\n), as safe HTML."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return out.replace("\n", "<br>")


def digit_grid_html(images: Sequence[np.ndarray], captions: Sequence[str] | None = None,
                    scale: int = 3, borders: Sequence[tuple | None] | None = None,
                    alts: Sequence[str] | None = None) -> str:
    """The HTML of a wrapping row of digits with captions (see digit_grid)."""
    n = len(images)
    captions = list(captions) if captions is not None else [""] * n
    borders = list(borders) if borders is not None else [None] * n
    alts = list(alts) if alts is not None else [c.replace("**", "") for c in captions]
    framed = any(b is not None for b in borders)
    figures = []
    for img, cap, border, alt in zip(images, captions, borders, alts):
        small = to_uint8(img)  # sent at its own size; the browser enlarges it, crisp (pixelated)
        h, w = small.shape[0] * scale, small.shape[1] * scale
        frame = f"border:3px solid {rgb_css(border if border is not None else GREY)};" if framed else ""
        figures.append(
            f'<figure class="digit" style="margin:0;width:{w + (6 if framed else 0)}px">'
            f'<img src="{png_data_uri(small)}" alt="{html.escape(alt)}" width="{w}" height="{h}" '
            f'style="display:block;width:{w}px;height:{h}px;image-rendering:pixelated;{frame}">'
            + (f'<figcaption style="font-size:0.75rem;line-height:1.25;text-align:center;'
               f'opacity:0.75;margin-top:3px">{_caption_html(cap)}</figcaption>' if cap else "")
            + "</figure>"
        )
    return ('<div class="digit-grid" style="display:flex;flex-wrap:wrap;gap:10px 8px;'
            'align-items:flex-start">' + "".join(figures) + "</div>")


def digit_grid(images: Sequence[np.ndarray], captions: Sequence[str] | None = None,
               scale: int = 3, borders: Sequence[tuple | None] | None = None,
               alts: Sequence[str] | None = None) -> None:
    """Show digits (or any small pictures) in a wrapping row with captions.

    Each picture is shown enlarged by whole pixels (``scale``; crisp, no
    smoothing: the browser scales it with ``image-rendering: pixelated``) and
    sent inline at its own size as a tiny PNG inside one st.html element: no media files
    for the browser to fetch, so the grid appears together with the rest of
    the page.  captions: plain text, ``**bold**`` and ``\n`` allowed.
    borders: a frame colour (RGB tuple) or None per picture; when any picture
    has a frame, the others get a grey one so the tiles line up.  alts: the
    pictures' alt texts (default: the captions).
    """
    if len(images) == 0:
        return
    st.html(digit_grid_html(images, captions, scale, borders, alts))


def shift_arrows(dy: int, dx: int) -> str:
    """A shift in arrows, e.g. (1, -2) -> '←2 ↓1' (dx first)."""
    parts = [("→" if dx > 0 else "←") + str(abs(dx))] if dx else []
    parts += [("↓" if dy > 0 else "↑") + str(abs(dy))] if dy else []
    return " ".join(parts)


def neighbour_captions(labels, distances, winner, shifts=None) -> tuple[list[str], list[tuple | None], list[str]]:
    """Captions, frames and alt texts for neighbours listed nearest first: rank, **label**,
    distance (and the shift that matched, when given); a ✓ and a green frame for those whose
    label is the winner's (they voted for it)."""
    labels, distances = np.asarray(labels).tolist(), np.asarray(distances).tolist()
    moved = [None] * len(labels) if shifts is None else [tuple(s) for s in np.asarray(shifts).tolist()]
    voted = [lab == winner for lab in labels]
    rows = list(enumerate(zip(labels, distances, voted, moved), start=1))
    captions = [f"#{r} {'✓ ' if v else ''}**{lab}**\nd={d:.4g}"
                + (f"\nmoved {shift_arrows(*m)}" if m and any(m) else "") for r, (lab, d, v, m) in rows]
    alts = [f"rank {r}: a training {lab} at distance {d:.4g}{', voted for the winner' if v else ''}"
            for r, (lab, d, v, _) in rows]
    return captions, [GREEN if v else None for v in voted], alts


def neighbour_grid(images, labels, distances, winner, scale: int = 3) -> None:
    """A digit's nearest training digits, nearest first, captioned by neighbour_captions."""
    captions, borders, alts = neighbour_captions(labels, distances, winner)
    digit_grid(images, captions, scale=scale, borders=borders, alts=alts)


def digits_beside_neighbours_html(images, captions, nb_images, nb_captions, nb_borders, nb_alts=None, *,
                                  frame: tuple | None = None, scale: int = 3, nb_scale: int = 3) -> str:
    """One row: a digit (or a few views of it, framed in `frame`), a rule, and its neighbours."""
    return ('<div class="digit-with-neighbours" style="display:flex;gap:12px;align-items:flex-start">'
            + digit_grid_html(images, captions, scale, [frame] * len(images) if frame else None)
            + '<div class="neighbour-digits" style="border-left:2px solid rgba(128,128,128,0.3);padding-left:12px">'
            + digit_grid_html(nb_images, nb_captions, nb_scale, nb_borders, nb_alts) + "</div></div>")


def digit_with_neighbours(image, caption: str, nb_images, nb_labels, nb_distances, winner,
                          frame: tuple | None = None, scale: int = 3) -> None:
    """A digit (framed in `frame`), and beside it its nearest training digits captioned by
    neighbour_captions: one row, one st.html element."""
    captions, borders, alts = neighbour_captions(nb_labels, nb_distances, winner)
    st.html(digits_beside_neighbours_html([image], [caption], nb_images, captions, borders, alts,
                                          frame=frame, scale=scale + 1, nb_scale=scale))
