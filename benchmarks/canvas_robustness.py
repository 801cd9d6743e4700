"""How well does kNN read MNIST test digits redrawn on a (simulated) drawing canvas?

For N seeded test digits, compares a kNN's accuracy on the original 28x28
digits with its accuracy on ``canvas_to_mnist(simulate_canvas(digit))``: each
digit blown up to a random size (35-90 % of a 280x280 canvas) at a random
place, with a thin / normal / thick pen, in each of the three canvas encodings
(white on black, black on white, ink in alpha).  The same seed is used for
every encoding, so the encodings see identical drawings and should score the
same.  One more row reruns the white-on-black drawings with
``canvas_to_mnist(..., min_stroke=MNIST_STROKE)`` (hairlines dilated to
MNIST's stroke width).  Also reports the mean pixel correlation between each
redrawn digit and its original.

    .venv/bin/python benchmarks/canvas_robustness.py --n 2000

The classifier is a function argument (``make_classifier``): anything with
``fit(X, y)`` and ``predict(X)`` on float32 rows.  ``--classifier auto`` uses
``knn_core.KNNClassifier`` when it exists, else scikit-learn's brute-force
``KNeighborsClassifier(n_neighbors=5)``.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import numpy as np

from knn_core.data import load_mnist
from knn_core.normalize import MNIST_STROKE, canvas_to_mnist
from knn_core.testing import ENCODINGS, PEN_RADII, simulate_canvas

PENS = ("thin", "normal", "thick", "random")
STROKE_ROW = f"{ENCODINGS[0]} + min_stroke={MNIST_STROKE}"


def sklearn_knn(k: int = 5):
    """scikit-learn's exact kNN (brute force, euclidean)."""
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric="euclidean")


def knn_core_knn(k: int = 5):
    """knn_core's own classifier (ImportError until it exists)."""
    from knn_core import KNNClassifier  # type: ignore[attr-defined]

    for kwargs in ({"n_neighbors": k, "metric": "euclidean"}, {"n_neighbors": k}, {"k": k}):
        try:
            return KNNClassifier(**kwargs)
        except TypeError:
            continue
    return KNNClassifier()


def pick_classifier(name: str) -> tuple[Callable[[], object], str]:
    if name == "sklearn":
        return sklearn_knn, "sklearn KNeighborsClassifier(n_neighbors=5, algorithm='brute')"
    if name == "knn_core":
        return knn_core_knn, "knn_core.KNNClassifier(n_neighbors=5, metric='euclidean')"
    try:
        knn_core_knn()
        return knn_core_knn, "knn_core.KNNClassifier(n_neighbors=5, metric='euclidean')"
    except ImportError:
        return sklearn_knn, "sklearn KNeighborsClassifier(n_neighbors=5, algorithm='brute')"


def rows(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32)


def redraw(digits: np.ndarray, encoding: str, pen: str, seed: int,
           min_stroke: float | None = None) -> np.ndarray:
    """Each digit -> simulated canvas -> canvas_to_mnist.  Same seed => same drawings for every encoding."""
    rng = np.random.default_rng([seed, PENS.index(pen)])
    pen_arg = None if pen == "random" else pen
    return np.stack([
        canvas_to_mnist(simulate_canvas(d, rng, encoding=encoding, pen=pen_arg), min_stroke=min_stroke)
        for d in digits
    ])


def mean_correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = rows(a) - rows(a).mean(axis=1, keepdims=True)
    b = rows(b) - rows(b).mean(axis=1, keepdims=True)
    c = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return float(c.mean())


def run(n: int, seed: int, make_classifier: Callable[[], object], n_train: int | None = None,
        log=print) -> dict:
    """Accuracy (and mean correlation with the originals) for every condition."""
    ds = load_mnist()
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds.test_images), size=min(n, len(ds.test_images)), replace=False))
    digits, labels = ds.test_images[idx], ds.test_labels[idx]
    train_x, train_y = ds.train_images, ds.train_labels
    if n_train is not None:
        train_x, train_y = train_x[:n_train], train_y[:n_train]

    t = time.perf_counter()
    clf = make_classifier()
    clf.fit(rows(train_x), train_y)
    log(f"fitted on {len(train_x)} training digits in {time.perf_counter() - t:.1f} s")

    def accuracy(images):
        return float((np.asarray(clf.predict(rows(images))) == labels).mean())

    results = {("original", "-"): (accuracy(digits), 1.0)}
    renorm = np.stack([canvas_to_mnist(d) for d in digits])
    results[("original -> canvas_to_mnist", "-")] = (accuracy(renorm), mean_correlation(renorm, digits))
    for pen in PENS:
        for enc in ENCODINGS:
            t = time.perf_counter()
            redrawn = redraw(digits, enc, pen, seed)
            results[(enc, pen)] = (accuracy(redrawn), mean_correlation(redrawn, digits))
            log(f"{enc:>15} / {pen:<6}: acc {results[(enc, pen)][0]:.4f}"
                f" ({time.perf_counter() - t:.1f} s)")
        redrawn = redraw(digits, ENCODINGS[0], pen, seed, min_stroke=MNIST_STROKE)
        results[(STROKE_ROW, pen)] = (accuracy(redrawn), mean_correlation(redrawn, digits))
        log(f"{STROKE_ROW} / {pen}: acc {results[(STROKE_ROW, pen)][0]:.4f}")
    return results


def markdown(results: dict) -> str:
    lines = [
        "| input | " + " | ".join(f"{p} pen" for p in PENS) + " |",
        "|---|" + "---|" * len(PENS),
    ]
    for key in (("original", "-"), ("original -> canvas_to_mnist", "-")):
        acc, corr = results[key]
        lines.append(f"| {key[0]} (28x28) | " + " | ".join(
            [f"{acc:.2%} (r={corr:.3f})"] + ["" for _ in PENS[1:]]) + " |")
    for enc in ENCODINGS + (STROKE_ROW,):
        cells = [f"{results[(enc, p)][0]:.2%} (r={results[(enc, p)][1]:.3f})" for p in PENS]
        lines.append(f"| canvas, {enc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="pens: " + ", ".join(f"{k} = {v:+d} px" for k, v in PEN_RADII.items())
                                 + " (erode < 0 < dilate, at 280x280 canvas scale); random = a random"
                                   " whole number of px in [-3, +3] per digit")
    ap.add_argument("--n", type=int, default=2000, help="number of MNIST test digits (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the digit sample and the drawings")
    ap.add_argument("--n-train", type=int, default=None, help="use only the first N training digits")
    ap.add_argument("--classifier", choices=("auto", "sklearn", "knn_core"), default="auto")
    args = ap.parse_args(argv)

    make, desc = pick_classifier(args.classifier)
    print(f"classifier: {desc}; {args.n} test digits, seed {args.seed}", file=sys.stderr)
    t = time.perf_counter()
    results = run(args.n, args.seed, make, args.n_train, log=lambda s: print(s, file=sys.stderr))
    print(f"\nkNN (k=5, euclidean) accuracy; r = mean pixel correlation with the original digit; "
          f"n={args.n}, seed={args.seed}, classifier: {desc}\n")
    print(markdown(results))
    print(f"\n({time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
