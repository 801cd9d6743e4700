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

``--gate-methods deskew,idm``: a row with the digit gate (the euclidean rule on
raw pixels, asked too; knn_core.abstain.GATES) below each of these methods'
shape-score row; with ``--fit`` its share of the refusals is refitted
(`fit_gate_share`, validation + design only) and the `GATES` table printed.
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
    GATE_METHOD,
    AbstainRule,
    answered_accuracy,
    compared_pictures,
    distance_per_class,
    fit_exponents,
    fit_gate_share,
    fit_method_exponents,
    fit_method_gate_share,
    gate_inputs,
    gate_share,
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
            fit: bool = False, grid=EXPONENT_GRID, gate: bool = False) -> dict:
    method = Method.parse(name)
    k, weights = method.k, method.weights
    shape = shape and (shape_applies(method) or fit)  # IDM: its ratios (shape_ratios) fitted with --fit
    gate = gate and shape
    t0 = time.perf_counter()
    full = KNNClassifier(k, method=method, weights=weights).fit(ds.train_images, ds.train_labels)
    fitsplit = KNNClassifier(k, method=method, weights=weights).fit(ds.fit_images, ds.fit_labels)
    gm = Method.parse(GATE_METHOD)  # the digit gate's plain search, on the same training digits
    gate_full = KNNClassifier(gm.k, method=gm, weights=gm.weights).fit(ds.train_images, ds.train_labels)
    gate_fit = KNNClassifier(gm.k, method=gm, weights=gm.weights).fit(ds.fit_images, ds.fit_labels)
    Xn, kinds, names, parts = nondigits

    def raw(X, what, clf=gate_full, train=ds.train_images):  # the digit gate's judge inputs
        d, i, _ = _search(clf, X, (GATE_METHOD, subset, what))
        return gate_inputs(d, clf.neighbor_labels(i), X, train, i[:, : gm.k])

    def judge(rule, X, what, clf=full, train=ds.train_images):  # with the pictures (as compared) when needed
        d, i, sh = _search(clf, X, (name, subset, what))
        pics = compared_pictures(method, X, train, i[:, :k], sh) if shape else {}
        g = None if rule.gate is None else raw(X, what, gate_fit if clf is fitsplit else gate_full, train)
        return rule.judge(d, clf.neighbor_labels(i), **pics, gate=g)

    if subset is None:
        val = neighbor_lists(ds, method, "val")
        vd, vl, vq = val.distances, val.neighbor_labels(val.k_max), ds.val_images
        vpics = compared_pictures(method, vq, ds.train_images, val.neighbor_rows(k), val.shifts) if shape else {}
        if gate:
            gv = neighbor_lists(ds, GATE_METHOD, "val")
            vgate = gate_inputs(gv.distances, gv.neighbor_labels(gv.k_max), vq, ds.train_images, gv.neighbor_rows(gm.k))
    else:
        vi = stratified_subset(ds.val_labels, subset, random_state=1)
        vq = ds.val_images[vi]
        d, i, sh = _search(fitsplit, vq, (name, subset, "val"))  # as Abstainer(fit).fit(val) does
        vd, vl = d, fitsplit.neighbor_labels(i)
        vpics = compared_pictures(method, vq, ds.fit_images, i[:, :k], sh) if shape else {}
        if gate:
            vgate = raw(vq, "val", gate_fit, ds.fit_images)

    def calibrate(exponents, share=None):
        return AbstainRule.calibrate(vd, vl, k=k, weights=weights, coverage=coverage, classes=np.unique(ds.train_labels),
                                     distance_name=method.distance_name, exponents=exponents,
                                     distance_per_class=distance_per_class(method), **vpics,
                                     gate=vgate if share is not None else None, gate_share=share)

    exponents = method_exponents(method) if shape else None
    if fit and shape and subset is None:  # on the validation digits and the design non-digits only
        exponents = fit_method_exponents(ds, method, coverage=coverage, grid=grid)
    elif fit and shape:  # the same on the validation subset, the design non-digits searched as validation is
        ones = calibrate(None)
        design = (parts == "design") & (kinds != "digit-like")
        jd = judge(ones, Xn[design], "design vs fit", fitsplit, ds.fit_images)
        exponents = fit_exponents(ones, ones.judge(vd, vl, **vpics), jd, coverage, groups=kinds[design],
                                  ratios=shape_ratios(method), grid=grid)
    share = gate_share(method) if gate else None
    if gate and fit and subset is None:  # on the validation digits and the design non-digits only
        share = fit_method_gate_share(ds, method, coverage=coverage)
    elif gate and fit:  # the same on the validation subset, the design non-digits searched as validation is
        design = (parts == "design") & (kinds != "digit-like")
        own = calibrate(exponents)
        gate_rule = AbstainRule.calibrate(**vgate, k=gm.k, weights=gm.weights, coverage=coverage,
                                          classes=np.unique(ds.train_labels), exponents=method_exponents(gm))
        gd, gi, _ = _search(gate_fit, Xn[design], (GATE_METHOD, subset, "design vs fit"))
        gjd = gate_rule.judge(gd, gate_fit.neighbor_labels(gi), **compared_pictures(gm, Xn[design], ds.fit_images, gi))
        share = fit_gate_share(own, own.judge(vd, vl, **vpics), judge(own, Xn[design], "design vs fit", fitsplit,
                                                                       ds.fit_images),
                               gate_rule, gate_rule.judge(**vgate), gjd, coverage, groups=kinds[design])
    if gate and share is None:
        raise SystemExit(f"{name} has no digit gate in GATES: --fit fits its share")
    rule = calibrate(exponents, share)
    if subset is None:
        test = neighbor_lists(ds, method, "test")
        gate_lists = neighbor_lists(ds, GATE_METHOD, "test") if gate else None
        jt = rule.judge_lists(test, *((ds.test_images, ds.train_images) if shape else ()), gate_lists=gate_lists)
        ty = test.query_labels
    else:
        ti = stratified_subset(ds.test_labels, subset, random_state=1)
        jt, ty = judge(rule, ds.test_images[ti], "test"), ds.test_labels[ti]
    Xr, yr = redrawn
    jr = judge(rule, Xr, "redrawn")
    jn = judge(rule, Xn, "nondigits")
    fair = kinds != "digit-like"
    held = parts == "held-out"
    own_refused = (jn.score > jn.limit) | (jn.share < rule.min_share)  # by the method's own tests
    return dict(
        name=method.name,
        method=name + (f" (subsets of {subset})" if subset else "") + ("" if shape else ", distance alone")
        + (f" + digit gate ({share:g} of the refusals)" if gate else ""),
        gate_share=share,
        # of the fair non-digits refused: by the gate alone (the method's own tests answer them)
        by_gate_only=float((fair & jn.refused & ~own_refused).sum() / max(int((fair & jn.refused).sum()), 1)) if gate else None,
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
    ap.add_argument("--gate-methods", default="deskew,idm",
                    help="also a row with the digit gate (knn_core.abstain.GATES) for these methods")
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
    gated = set(args.gate_methods.split(",")) - {""}
    rows_of = [(job, shape, gate) for job in jobs for shape in shapes
               for gate in ((False, True) if shape and job[0] in gated else (False,))]
    for (name, subset), shape, gate in rows_of:  # each row once measured
        grid = EXPONENT_GRID if args.grid_step is None else tuple(np.round(np.arange(0, 3 + 1e-9, args.grid_step), 4))
        r = measure(ds, name, args.coverage, subset, redrawn, nondigits, shape, args.fit, grid, gate)
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
            + ("" if r["by_gate_only"] is None else f"; refused by the gate alone: {r['by_gate_only']:.0%} of the refused")
        )
        print("    letters by font: " + ", ".join(f"{f} {v:.0%}" for f, v in r["per_font"].items()))
    if args.fit:
        print("\nEXPONENTS = {  # fitted on validation + design non-digits by benchmarks/abstain.py --fit")
        for r in rows:
            if r["exponents"] is not None and r["gate_share"] is None:
                print(f"    {r['name']!r}: {r['exponents']},")
        print("}")
        print("GATES = {  # fitted on validation + design non-digits by benchmarks/abstain.py --fit")
        for r in rows:
            if r["gate_share"] is not None:
                print(f"    {r['name']!r}: {r['gate_share']},")
        print("}")


if __name__ == "__main__":
    main()
