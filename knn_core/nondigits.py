"""A deterministic set of drawings that are not digits, for calibrating and testing the refusal.

Letters in OpenCV's Hershey fonts (several fonts, sizes and pen widths),
shapes (discs, squares, triangles, stars, crosses), smiley faces and
scribbles (smoothed random walks), each drawn white on black at canvas size
(280 x 280 RGBA, like the Draw page's canvas) and sent through the same
path as a drawing (`knn_core.normalize.canvas_to_mnist` with the Draw page's
stroke thickening), so they reach the classifier as a student's drawing
would.

Some of them honestly look like digits once normalised: O, o, D and a ring
look like 0; I, l, i, J, T like 1 or 7; S, s like 5; Z, z like 2; B like 8;
b, G like 6; g, q like 9. They are kept apart (``kind="digit-like"``) and
reported apart: refusing them is not a fair target for a classifier of
digits.

Two parts, fixed once and for all (``part``): "design", the only drawings a
refusal rule may be designed or fitted on, and "held-out", the drawings it is
judged on. Once through the drawing path (which evens out the pen) the 768
letters are only 192 distinct pictures: the pen width makes no difference,
italic simplex is simplex, and duplex, complex and triplex are one picture; so
the six fonts are three renderings (simplex, duplex, script), and `distinct`
keeps one drawing per picture for counting. Letters are split by rendering:
design in simplex (and its italic alias), held-out in the renderings never
seen in design (duplex and its aliases, and script, the hardest). Shapes,
faces and rings of the design part are the fixed ones; the held-out part draws
the same kinds turned, stretched and with another pen from `HELD_OUT_SEED`,
and its scribbles come from that seed too. `check_split` verifies that no
held-out picture is a (near) copy of a design one.

>>> items = nondigit_drawings()                 # doctest: +SKIP
>>> items[0].kind, items[0].name, items[0].digit.shape   # doctest: +SKIP
('letter', 'A hershey-simplex 0.70 t18', (28, 28))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .normalize import MNIST_STROKE, canvas_to_mnist

__all__ = [
    "NonDigit", "nondigit_drawings", "letter_canvas", "render_canvas", "check_split", "distinct", "LETTERS", "DIGIT_LIKE_LETTERS",
    "KINDS", "PARTS", "DESIGN_FONTS", "HELD_OUT_FONTS", "HELD_OUT_SEED",
]

CANVAS = 280
# Letters no fair judge would take for a digit once normalised to 20x20, and those that may be.
LETTERS = "ACEFHKMNPRUVWXYacdefhkmnprtuvwxy"
DIGIT_LIKE_LETTERS = "OoDIliJjTSsZzBbGgq"
KINDS = ("letter", "shape", "face", "scribble", "digit-like")
FONTS = {
    "hershey-simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "hershey-duplex": cv2.FONT_HERSHEY_DUPLEX,
    "hershey-complex": cv2.FONT_HERSHEY_COMPLEX,
    "hershey-triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "hershey-script": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    "hershey-italic": cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
}
PARTS = ("design", "held-out")
DESIGN_FONTS = ("hershey-simplex", "hershey-italic")  # one rendering once normalised (module docstring)
HELD_OUT_FONTS = ("hershey-duplex", "hershey-complex", "hershey-triplex", "hershey-script")  # never seen in design
HELD_OUT_SEED = 1  # the held-out shapes', faces' and scribbles' random draws (design: the fixed ones, scribbles seed 0)


@dataclass(frozen=True)
class NonDigit:
    """One made-up drawing: what it is, the canvas picture and the 28x28 the classifier sees."""

    kind: str  # one of KINDS
    name: str  # e.g. "A hershey-duplex 0.8 t14", "star 5 filled"
    canvas: np.ndarray  # (280, 280, 4) uint8, white on black, like the Draw page's canvas
    digit: np.ndarray  # (28, 28) uint8, through the drawing path
    part: str = "design"  # "design" (rules may be designed and fitted on it) or "held-out" (judged only)


def render_canvas(ink: np.ndarray) -> np.ndarray:
    """A white-on-black ink picture (H, W) uint8 -> the canvas' RGBA, softened as a browser's anti-aliasing."""
    ink = cv2.GaussianBlur(ink, (0, 0), 1.0)
    out = np.empty(ink.shape + (4,), np.uint8)
    out[:, :, :3] = ink[:, :, None]
    out[:, :, 3] = 255
    return out


def _blank() -> np.ndarray:
    return np.zeros((CANVAS, CANVAS), np.uint8)


def _letter(ch: str, font: int, height_frac: float, thickness: int) -> np.ndarray:
    """One letter whose cap height is about height_frac of the canvas, centred."""
    (w, h), base = cv2.getTextSize(ch, font, 1.0, thickness)
    scale = height_frac * CANVAS / max(h + base, 1)
    (w, h), base = cv2.getTextSize(ch, font, scale, thickness)
    img = _blank()
    org = ((CANVAS - w) // 2, (CANVAS + h - base) // 2)
    cv2.putText(img, ch, org, font, scale, 255, thickness, cv2.LINE_AA)
    return img


def letter_canvas(ch: str, font: str = "hershey-simplex", height_frac: float = 0.8, thickness: int = 36) -> np.ndarray:
    """One letter drawn on the canvas (RGBA), as in `nondigit_drawings` (e.g. for a test of one drawing)."""
    return render_canvas(_letter(ch, FONTS[font], height_frac, thickness))


def _star(points: int, r_out: float, r_in: float, c=(140, 140), rot=0.0) -> np.ndarray:
    ang = rot + np.pi / points * np.arange(2 * points)
    r = np.where(np.arange(2 * points) % 2 == 0, r_out, r_in)
    return np.stack([c[0] + r * np.sin(ang), c[1] - r * np.cos(ang)], axis=1).round().astype(np.int32)


def _shapes() -> list[tuple[str, np.ndarray]]:
    out = []
    for t in (12, 22):
        img = _blank()
        cv2.rectangle(img, (50, 50), (230, 230), 255, t)
        out.append((f"square t{t}", img))
        img = _blank()
        cv2.polylines(img, [np.array([[140, 40], [240, 230], [40, 230]], np.int32)], True, 255, t)
        out.append((f"triangle t{t}", img))
        img = _blank()
        cv2.polylines(img, [np.array([[140, 30], [250, 200], [30, 200]], np.int32)[:, ::-1]], True, 255, t)
        out.append((f"sideways triangle t{t}", img))
        for n in (5, 6):
            img = _blank()
            cv2.polylines(img, [_star(n, 115, 50)], True, 255, t)
            out.append((f"star {n} t{t}", img))
        img = _blank()
        cv2.line(img, (140, 40), (140, 240), 255, t)
        cv2.line(img, (40, 140), (240, 140), 255, t)
        out.append((f"plus t{t}", img))
        img = _blank()
        cv2.rectangle(img, (40, 90), (240, 190), 255, t)
        out.append((f"wide rectangle t{t}", img))
        img = _blank()
        cv2.polylines(img, [np.array([[140, 30], [240, 140], [140, 250], [40, 140]], np.int32)], True, 255, t)
        out.append((f"diamond t{t}", img))
    for n in (5, 6):
        img = _blank()
        cv2.fillPoly(img, [_star(n, 115, 50)], 255)
        out.append((f"star {n} filled", img))
    img = _blank()
    cv2.circle(img, (140, 140), 100, 255, -1)
    out.append(("disc", img))
    img = _blank()
    cv2.rectangle(img, (50, 50), (230, 230), 255, -1)
    out.append(("filled square", img))
    img = _blank()
    cv2.fillPoly(img, [np.array([[140, 40], [240, 230], [40, 230]], np.int32)], 255)
    out.append(("filled triangle", img))
    return out


def _faces() -> list[tuple[str, np.ndarray]]:
    out = []
    for t in (10, 16, 22):
        for mood, (start, end, cy) in {"smiling": (20, 160, 150), "sad": (200, 340, 210)}.items():
            img = _blank()
            cv2.circle(img, (140, 140), 110, 255, t)
            cv2.circle(img, (100, 105), 12, 255, -1)
            cv2.circle(img, (180, 105), 12, 255, -1)
            cv2.ellipse(img, (140, cy), (55, 40), 0, start, end, 255, t)
            out.append((f"{mood} face t{t}", img))
    return out


def _scribbles(n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Tangles (a long wandering pen) and zigzag shading, as a bored student scribbles.

    A short wiggly line is left out on purpose: normalised to 20 px it looks like a 2, 3 or 7.
    """
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        t = int(rng.integers(8, 22))
        if j % 2 == 0:  # tangle: a pen looping about inside a patch (random Lissajous-like loops)
            s = np.linspace(0, 2 * np.pi, 400)
            freq = rng.integers(1, 6, size=(2, 3))
            phase = rng.uniform(0, 2 * np.pi, size=(2, 3))
            amp = rng.uniform(0.3, 1.0, size=(2, 3))
            pts = np.stack(
                [(amp[a, :, None] * np.sin(freq[a, :, None] * s + phase[a, :, None])).sum(0) for a in range(2)], axis=1
            )
            name = "tangle"
        else:  # zigzag shading: strokes back and forth across a patch
            rows = int(rng.integers(5, 10))
            ys = np.linspace(0, 1, 2 * rows) + rng.normal(0, 0.02, 2 * rows)
            xs = np.tile([0.0, 1.0], rows) + rng.normal(0, 0.05, 2 * rows)
            pts = np.stack([xs, ys], axis=1)
            if rng.random() < 0.5:
                pts = pts[:, ::-1]
            name = "zigzag"
        pts = pts - (pts.max(axis=0) + pts.min(axis=0)) / 2
        pts *= 200 / max(float(np.ptp(pts, axis=0).max()), 1e-9)
        pts = (pts + 140).round().astype(np.int32)
        img = _blank()
        cv2.polylines(img, [pts], False, 255, t, cv2.LINE_AA)
        out.append((f"{name} {j} t{t}", img))
    return out


def _jittered(items: list[tuple[str, np.ndarray]], rng, prefix: str = "turned ") -> list[tuple[str, np.ndarray]]:
    """The same drawings turned by a random angle, stretched and with the pen thinned or thickened (the held-out
    shapes, faces and rings: other pictures of the same kinds, not copies of the design ones)."""
    out = []
    for name, img in items:
        angle = float(rng.uniform(-40, 40))
        sx, sy = rng.uniform(0.7, 1.0, size=2)
        M = cv2.getRotationMatrix2D((CANVAS / 2, CANVAS / 2), angle, 1.0)
        M[:, :2] = M[:, :2] * np.array([[sx], [sy]])
        M[:, 2] = M[:, 2] + (1 - np.array([sx, sy])) * CANVAS / 2
        moved = cv2.warpAffine(img, M, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR)
        pen = int(rng.integers(-1, 2))  # thinner, the same, thicker
        kernel = np.ones((7, 7), np.uint8)
        if pen > 0:
            moved = cv2.dilate(moved, kernel)
        elif pen < 0:
            thin = cv2.erode(moved, kernel)
            moved = thin if thin.any() else moved
        out.append((f"{prefix}{name} a{angle:+.0f} s{sx:.2f}x{sy:.2f} p{pen:+d}", moved))
    return out


def _ring() -> list[tuple[str, np.ndarray]]:
    out = []
    for t in (12, 22):
        img = _blank()
        cv2.circle(img, (140, 140), 100, 255, t)
        out.append((f"ring t{t}", img))
    return out


@lru_cache(maxsize=2)
def nondigit_drawings(n_scribbles: int = 60, seed: int = 0, part: str | None = None) -> tuple[NonDigit, ...]:
    """Every made-up non-digit, in a fixed order (the same on every machine with the same OpenCV).

    About 1,700 drawings: 32 letters x 6 fonts x 2 sizes x 2 pen widths (MNIST-like and bold), 21 shapes, 6 faces,
    ``n_scribbles`` scribbles in the design part and as many turned/stretched ones from `HELD_OUT_SEED` in the
    held-out part; plus the digit-like letters and rings under kind "digit-like". part: "design" or "held-out"
    for one part only (module docstring), None: both.
    """
    if part is not None and part not in PARTS:
        raise ValueError(f"part must be one of {PARTS} or None; got {part!r}")
    rng = np.random.default_rng(HELD_OUT_SEED)
    items: list[tuple[str, str, str, np.ndarray]] = []
    for letters, kind in ((LETTERS, "letter"), (DIGIT_LIKE_LETTERS, "digit-like")):
        for ch in letters:
            for fname, font in FONTS.items():
                where = "design" if fname in DESIGN_FONTS else "held-out"
                for size in (0.55, 0.8):
                    for t in (20, 36):
                        items.append((kind, where, f"{ch} {fname} {size:.2f} t{t}", _letter(ch, font, size, t)))
    for kind, made in (("shape", _shapes), ("face", _faces), ("digit-like", _ring)):
        items += [(kind, "design", name, img) for name, img in made()]
    items += [("scribble", "design", name, img) for name, img in _scribbles(n_scribbles, seed)]
    for kind, made in (("shape", _shapes), ("face", _faces), ("digit-like", _ring)):
        items += [(kind, "held-out", name, img) for name, img in _jittered(made(), rng)]
    items += [
        ("scribble", "held-out", f"seed{HELD_OUT_SEED} {name}", img)
        for name, img in _scribbles(n_scribbles, HELD_OUT_SEED + 1000 * seed)
    ]
    out = []
    for kind, where, name, ink in items:
        if part is not None and where != part:
            continue
        canvas = render_canvas(ink)
        canvas.setflags(write=False)
        digit = canvas_to_mnist(canvas, min_stroke=MNIST_STROKE)
        digit.setflags(write=False)
        out.append(NonDigit(kind, name, canvas, digit, where))
    return tuple(out)


def distinct(items):
    """One drawing per distinct 28x28 picture (the first), in order: counts that do not weigh a letter by how
    many of its fonts and pens give the same picture."""
    seen, out = set(), []
    for x in items:
        key = x.digit.tobytes()
        if key not in seen:
            seen.add(key)
            out.append(x)
    return tuple(out)


def check_split(items=None, min_distance: float = 255.0) -> float:
    """The smallest euclidean distance between a held-out picture and a design one (28x28, 0-255); raises
    ValueError when one is closer than min_distance (a near copy: one faint pixel in 784 is 255 apart)."""
    items = nondigit_drawings() if items is None else items
    design = np.stack([x.digit for x in items if x.part == "design"]).reshape(-1, 784).astype(np.float64)
    held = np.stack([x.digit for x in items if x.part == "held-out"]).reshape(-1, 784).astype(np.float64)
    d2 = (held**2).sum(1)[:, None] + (design**2).sum(1)[None] - 2 * held @ design.T
    closest = float(np.sqrt(max(d2.min(), 0.0)))
    if closest < min_distance:
        raise ValueError(f"a held-out non-digit is a near copy of a design one (distance {closest:.0f})")
    return closest
