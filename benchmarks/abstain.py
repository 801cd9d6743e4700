"""Abstaining: how many real digits are still answered, and how many non-digits refused, per method.

    nice -n 19 python benchmarks/abstain.py [--methods euclidean,deskew+blur] [--subset-methods idm]
        [--subset 1000] [--redrawn 1000] [--coverage 0.993] [--rule shape|distance|both]

For each method the refusal (knn_core.abstain) is calibrated on the validation
split (10,000 digits against the 50,000 before them); then measured on the
test set (10,000 digits against all 60,000), on test digits redrawn at canvas
size through the Draw page's path (knn_core.testing.simulate_canvas), and on
the project's non-digit drawings (knn_core.nondigits). Methods too slow for
the full splits (IDM) are measured on class-balanced subsets of validation
and test digits (``--subset``), said in the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knn_core import KNNClassifier, Method, load_mnist, neighbor_lists, stratified_subset  # noqa: E402
from knn_core.abstain import AbstainRule, abstain_rule, answered_accuracy, compared_pictures, shape_applies  # noqa: E402
from knn_core.nondigits import FONTS, nondigit_drawings  # noqa: E402
from knn_core.normalize import MNIST_STROKE, canvas_to_mnist  # noqa: E402
from knn_core.testing import simulate_canvas  # noqa: E402


def redrawn_test_digits(ds, n: int, seed: int = 0):
    """n test digits (class-balanced) redrawn at canvas size and sent through the drawing path."""
    rng = np.random.default_rng(seed)
    idx = stratified_subset(ds.test_labels, n, random_state=seed)
    X = np.stack([canvas_to_mnist(simulate_canvas(ds.test_images[i], rng), min_stroke=MNIST_STROKE) for i in idx])
    return X, ds.test_labels[idx]


_SEARCHED: dict = {}  # (method, subset, what) -> (distances, indices): both rules from one search (IDM is slow)


def _search(clf, X, key):
    if key not in _SEARCHED:
        _SEARCHED[key] = clf.kneighbors_detail(X)
    return _SEARCHED[key]


def measure(ds, name: str, coverage: float, subset: int | None, redrawn, nondigits, shape: bool = True) -> dict:
    method = Method.parse(name)
    k, weights = method.k, method.weights
    shape = shape and shape_applies(method)  # IDM and 10x10 keep the distance alone
    t0 = time.perf_counter()
    full = KNNClassifier(k, method=method, weights=weights).fit(ds.train_images, ds.train_labels)

    def judge(rule, X, what):  # queries against all 60,000, with the pictures (as compared) when the rule needs them
        d, i, sh = _search(full, X, (name, subset, what))
        pics = compared_pictures(method, X, ds.train_images, i[:, :k], sh) if shape else {}
        return rule.judge(d, full.neighbor_labels(i), **pics)

    if subset is None:
        rule = abstain_rule(ds, method, k=k, weights=weights, coverage=coverage, pictures=shape)
        test = neighbor_lists(ds, method, "test")
        jt, ty = rule.judge_lists(test, *((ds.test_images, ds.train_images) if shape else ())), test.query_labels
    else:
        fit = KNNClassifier(k, method=method, weights=weights).fit(ds.fit_images, ds.fit_labels)
        vi = stratified_subset(ds.val_labels, subset, random_state=1)
        d, i, sh = _search(fit, ds.val_images[vi], (name, subset, "val"))  # as Abstainer(fit).fit(val) does
        rule = AbstainRule.calibrate(
            d, fit.neighbor_labels(i), k=k, weights=weights, coverage=coverage, classes=fit.classes_,
            distance_name=fit.distance_name,
            **(compared_pictures(method, ds.val_images[vi], ds.fit_images, i[:, :k], sh) if shape else {}),
        )
        ti = stratified_subset(ds.test_labels, subset, random_state=1)
        jt, ty = judge(rule, ds.test_images[ti], "test"), ds.test_labels[ti]
    Xr, yr = redrawn
    jr = judge(rule, Xr, "redrawn")
    Xn, kinds, names = nondigits
    jn = judge(rule, Xn, "nondigits")
    fair = kinds != "digit-like"
    return dict(
        method=name + (f" (subsets of {subset})" if subset else "") + ("" if shape else ", distance alone"),
        k=k,
        weights=weights,
        val_cov=rule.coverage,
        test_cov=jt.coverage,
        test_acc_all=float(np.mean(jt.winners == ty)),
        test_acc=answered_accuracy(jt, ty),
        red_cov=jr.coverage,
        red_acc=answered_accuracy(jr, yr),
        nd=float(jn.refused[fair].mean()),
        digit_like=float(jn.refused[~fair].mean()),
        per_kind={kd: float(jn.refused[kinds == kd].mean()) for kd in dict.fromkeys(kinds)},
        per_font={f: float(jn.refused[(kinds == "letter") & (np.char.find(names, f" {f} ") >= 0)].mean()) for f in FONTS},
        seconds=time.perf_counter() - t0,
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="euclidean,plain,downsample,deskew,deskew+blur")
    ap.add_argument("--subset-methods", default="idm")
    ap.add_argument("--subset", type=int, default=1000)
    ap.add_argument("--redrawn", type=int, default=1000)
    ap.add_argument("--coverage", type=float, default=0.993)
    ap.add_argument("--rule", choices=("shape", "distance", "both"), default="shape",
                    help="shape: distance x patch difference x ink (the default); distance: the distance alone "
                         "(the rule before it); both: a row of each from one search")
    args = ap.parse_args(argv)
    ds = load_mnist()
    nd = nondigit_drawings()
    nondigits = (np.stack([x.digit for x in nd]), np.array([x.kind for x in nd]), np.array([x.name for x in nd]))
    redrawn = redrawn_test_digits(ds, args.redrawn)
    fair = nondigits[1] != "digit-like"
    print(
        f"non-digits: {int(fair.sum())} (letters, shapes, faces, scribbles) + {int((~fair).sum())} digit-like "
        f"(O, I, S, Z, B, g, rings...) reported apart; redrawn test digits: {args.redrawn}; "
        f"calibrated for coverage {args.coverage} on validation; rule: {args.rule}"
    )
    print(
        "\n| method | k, votes | coverage val / test | test accuracy: all / answered | redrawn: coverage / "
        "accuracy answered | non-digits refused | digit-like refused |"
    )
    print("|---|---|---|---|---|---|---|", flush=True)
    jobs = [(m, None) for m in args.methods.split(",") if m]
    jobs += [(m, args.subset) for m in args.subset_methods.split(",") if m]
    rows = []
    shapes = {"shape": (True,), "distance": (False,), "both": (True, False)}[args.rule]
    for (name, subset), shape in ((job, shape) for job in jobs for shape in shapes):  # each row once measured
        if shape and not shape_applies(name) and False in shapes:
            continue  # its rule is the distance alone: one row
        r = measure(ds, name, args.coverage, subset, redrawn, nondigits, shape)
        rows.append(r)
        print(
            f"| {r['method']} | {r['k']}, {r['weights']} | {r['val_cov']:.2%} / {r['test_cov']:.2%} | "
            f"{r['test_acc_all']:.2%} / {r['test_acc']:.2%} | {r['red_cov']:.1%} / {r['red_acc']:.2%} | "
            f"{r['nd']:.1%} | {r['digit_like']:.1%} |",
            flush=True,
        )
    print("\nnon-digits refused by kind")
    for r in rows:
        print(
            f"  {r['method']}: "
            + ", ".join(f"{kd} {v:.0%}" for kd, v in r["per_kind"].items())
            + f"  ({r['seconds']:.0f} s)"
        )
        print("    letters by font: " + ", ".join(f"{f} {v:.0%}" for f, v in r["per_font"].items()))


if __name__ == "__main__":
    main()
