"""Abstaining: how many real digits are still answered, and how many non-digits refused, per method.

    nice -n 19 python benchmarks/abstain.py [--methods euclidean,deskew+blur] [--subset-methods idm]
        [--subset 1000] [--redrawn 1000] [--coverage 0.993] [--rule shape|distance|both] [--fit [--grid-step 0.25]]

For each method the refusal (knn_core.abstain) is calibrated on the validation
split (10,000 digits against the 50,000 before them); then measured on the
test set (10,000 digits against all 60,000), on test digits redrawn at canvas
size through the Draw page's path (knn_core.testing.simulate_canvas), and on
the project's non-digit drawings (knn_core.nondigits), counted once per
distinct 28x28 picture, on their design part, their held-out part (never
used to design or fit anything) and both. Methods too slow for the full
splits (IDM) are measured on class-balanced subsets of validation and test
digits (``--subset``), said in the table.

``--fit``: refit each method's shape-score exponents (knn_core.abstain.fit_exponents)
on the validation digits and the DESIGN non-digits only (searched against the
training digits before the validation split, as the validation digits are),
measure with them, and print the `EXPONENTS` table to paste into
knn_core/abstain.py. Without it the exponents in the code are used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knn_core import KNNClassifier, Method, load_mnist, neighbor_lists, stratified_subset  # noqa: E402
from knn_core.abstain import (  # noqa: E402
    EXPONENT_GRID,
    AbstainRule,
    answered_accuracy,
    compared_pictures,
    distance_per_class,
    fit_exponents,
    fit_method_exponents,
    method_exponents,
    shape_applies,
    shape_ratios,
)
from knn_core.nondigits import FONTS, distinct, nondigit_drawings  # noqa: E402
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


def measure(ds, name: str, coverage: float, subset: int | None, redrawn, nondigits, shape: bool = True,
            fit: bool = False, grid=EXPONENT_GRID) -> dict:
    method = Method.parse(name)
    k, weights = method.k, method.weights
    shape = shape and (shape_applies(method) or fit)  # IDM: its ratios (shape_ratios) fitted with --fit
    t0 = time.perf_counter()
    full = KNNClassifier(k, method=method, weights=weights).fit(ds.train_images, ds.train_labels)
    fitsplit = KNNClassifier(k, method=method, weights=weights).fit(ds.fit_images, ds.fit_labels)
    Xn, kinds, names, parts = nondigits

    def judge(rule, X, what, clf=full, train=ds.train_images):  # with the pictures (as compared) when needed
        d, i, sh = _search(clf, X, (name, subset, what))
        pics = compared_pictures(method, X, train, i[:, :k], sh) if shape else {}
        return rule.judge(d, clf.neighbor_labels(i), **pics)

    if subset is None:
        val = neighbor_lists(ds, method, "val")
        vd, vl, vq = val.distances, val.neighbor_labels(val.k_max), ds.val_images
        vpics = compared_pictures(method, vq, ds.train_images, val.neighbor_rows(k), val.shifts) if shape else {}
    else:
        vi = stratified_subset(ds.val_labels, subset, random_state=1)
        vq = ds.val_images[vi]
        d, i, sh = _search(fitsplit, vq, (name, subset, "val"))  # as Abstainer(fit).fit(val) does
        vd, vl = d, fitsplit.neighbor_labels(i)
        vpics = compared_pictures(method, vq, ds.fit_images, i[:, :k], sh) if shape else {}

    def calibrate(exponents):
        return AbstainRule.calibrate(vd, vl, k=k, weights=weights, coverage=coverage, classes=np.unique(ds.train_labels),
                                     distance_name=method.distance_name, exponents=exponents,
                                     distance_per_class=distance_per_class(method), **vpics)

    exponents = method_exponents(method) if shape else None
    if fit and shape and subset is None:  # on the validation digits and the design non-digits only
        exponents = fit_method_exponents(ds, method, coverage=coverage, grid=grid)
    elif fit and shape:  # the same on the validation subset, the design non-digits searched as validation is
        ones = calibrate(None)
        design = (parts == "design") & (kinds != "digit-like")
        jd = judge(ones, Xn[design], "design vs fit", fitsplit, ds.fit_images)
        exponents = fit_exponents(ones, ones.judge(vd, vl, **vpics), jd, coverage, groups=kinds[design],
                                  ratios=shape_ratios(method), grid=grid)
    rule = calibrate(exponents)
    if subset is None:
        test = neighbor_lists(ds, method, "test")
        jt, ty = rule.judge_lists(test, *((ds.test_images, ds.train_images) if shape else ())), test.query_labels
    else:
        ti = stratified_subset(ds.test_labels, subset, random_state=1)
        jt, ty = judge(rule, ds.test_images[ti], "test"), ds.test_labels[ti]
    Xr, yr = redrawn
    jr = judge(rule, Xr, "redrawn")
    jn = judge(rule, Xn, "nondigits")
    fair = kinds != "digit-like"
    held = parts == "held-out"
    return dict(
        name=method.name,
        method=name + (f" (subsets of {subset})" if subset else "") + ("" if shape else ", distance alone"),
        k=k,
        weights=weights,
        exponents=None if rule.exponents is None else tuple(float(x) for x in rule.exponents),
        val_cov=rule.coverage,
        test_cov=jt.coverage,
        test_acc_all=float(np.mean(jt.winners == ty)),
        test_acc=answered_accuracy(jt, ty),
        red_cov=jr.coverage,
        red_acc=answered_accuracy(jr, yr),
        nd_held=float(jn.refused[fair & held].mean()),
        nd_design=float(jn.refused[fair & ~held].mean()),
        nd=float(jn.refused[fair].mean()),
        digit_like=float(jn.refused[~fair].mean()),
        per_kind={
            f"{kd} {p}": float(jn.refused[(kinds == kd) & (parts == p)].mean()) for kd in dict.fromkeys(kinds)
            for p in ("design", "held-out")
        },
        per_font={f: float(jn.refused[(kinds == "letter") & (np.char.find(names, f" {f} ") >= 0)].mean())
                  for f in FONTS if ((kinds == "letter") & (np.char.find(names, f" {f} ") >= 0)).any()},
        seconds=time.perf_counter() - t0,
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="euclidean,plain,downsample,deskew,deskew+blur")
    ap.add_argument("--subset-methods", default="idm")
    ap.add_argument("--subset", type=int, default=1000)
    ap.add_argument("--redrawn", type=int, default=1000)
    ap.add_argument("--coverage", type=float, default=0.993)
    ap.add_argument("--fit", action="store_true", help="refit the exponents on validation + design non-digits")
    ap.add_argument("--grid-step", type=float, default=None,
                    help="with --fit: powers 0, step, ..., 3 instead of the coarse EXPONENT_GRID (e.g. 0.25)")
    ap.add_argument("--rule", choices=("shape", "distance", "both"), default="shape",
                    help="shape: the shape score (distance, patch, ink, directions, pieces; the default); distance: the distance alone "
                         "(the rule before it); both: a row of each from one search")
    args = ap.parse_args(argv)
    ds = load_mnist()
    nd = distinct(nondigit_drawings())  # one per distinct picture
    nondigits = (np.stack([x.digit for x in nd]), np.array([x.kind for x in nd]), np.array([x.name for x in nd]),
                 np.array([x.part for x in nd]))
    redrawn = redrawn_test_digits(ds, args.redrawn)
    fair = nondigits[1] != "digit-like"
    held = nondigits[3] == "held-out"
    print(
        f"distinct non-digit pictures: {int((fair & ~held).sum())} design + {int((fair & held).sum())} held-out "
        f"(letters, shapes, faces, scribbles), {int((~fair).sum())} digit-like (O, I, S, Z, B, g, rings...) "
        f"reported apart; redrawn test digits: {args.redrawn}; calibrated for coverage {args.coverage} on "
        f"validation; rule: {args.rule}; exponents {'refitted (--fit)' if args.fit else 'from the code'}"
    )
    print(
        "\n| method | k, votes | exponents (far, patch, ink, directions, pieces) | coverage val / test | test accuracy: all / answered | "
        "redrawn: coverage / accuracy answered | non-digits refused: held-out / design / both | digit-like refused |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    jobs = [(m, None) for m in args.methods.split(",") if m]
    jobs += [(m, args.subset) for m in args.subset_methods.split(",") if m]
    rows = []
    shapes = {"shape": (True,), "distance": (False,), "both": (True, False)}[args.rule]
    for (name, subset), shape in ((job, shape) for job in jobs for shape in shapes):  # each row once measured
        grid = EXPONENT_GRID if args.grid_step is None else tuple(np.round(np.arange(0, 3 + 1e-9, args.grid_step), 4))
        r = measure(ds, name, args.coverage, subset, redrawn, nondigits, shape, args.fit, grid)
        rows.append(r)
        ex = "-" if not shape else ("1, 1, 1" if r["exponents"] is None else ", ".join(f"{x:g}" for x in r["exponents"]))
        print(
            f"| {r['method']} | {r['k']}, {r['weights']} | {ex} | {r['val_cov']:.2%} / {r['test_cov']:.2%} | "
            f"{r['test_acc_all']:.2%} / {r['test_acc']:.2%} | {r['red_cov']:.1%} / {r['red_acc']:.2%} | "
            f"**{r['nd_held']:.1%}** / {r['nd_design']:.1%} / {r['nd']:.1%} | {r['digit_like']:.1%} |",
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
    if args.fit:
        print("\nEXPONENTS = {  # fitted on validation + design non-digits by benchmarks/abstain.py --fit")
        for r in rows:
            if r["exponents"] is not None:
                print(f"    {r['name']!r}: {r['exponents']},")
        print("}")


if __name__ == "__main__":
    main()
