"""IDM's shape score: every power of ink and pieces (patch and directions 0) on the design non-digits.

    nice -n 19 python benchmarks/abstain_idm_grid.py [--subset 1000]

Searches once (class-balanced validation subset and the design non-digits against the training digits
before the validation split, as benchmarks/abstain.py --subset does), then for each pair of powers on
EXPONENT_GRID prints the design refusal (all, least-refused kind, per kind) at the coverage asked for.
Only the DESIGN part and validation digits are read: the choice is made from this table; the held-out
part is measured afterwards with benchmarks/abstain.py for the chosen powers only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knn_core import KNNClassifier, Method, load_mnist, stratified_subset  # noqa: E402
from knn_core.abstain import DEFAULT_COVERAGE, EXPONENT_GRID, AbstainRule, _limits, compared_pictures  # noqa: E402
from knn_core.nondigits import distinct, nondigit_drawings  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subset", type=int, default=1000)
    ap.add_argument(
        "--overall-distance",
        action="store_true",
        help="the distance ratio against the overall median (as the distance alone is), not per class",
    )
    ap.add_argument(
        "--held-out",
        action="store_true",
        help="then measure the chosen powers (chosen above on design) on the held-out part and a test subset",
    )
    ap.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE)
    args = ap.parse_args(argv)
    ds = load_mnist()
    method = Method.parse("idm")
    k = method.k
    clf = KNNClassifier(k, method=method, weights=method.weights).fit(ds.fit_images, ds.fit_labels)
    vq = ds.val_images[stratified_subset(ds.val_labels, args.subset, random_state=1)]
    design = [x for x in distinct(nondigit_drawings(part="design")) if x.kind != "digit-like"]
    X = np.stack([x.digit for x in design])
    kinds = np.array([x.kind for x in design])
    judged = []
    for Q in (vq, X):
        nb = clf.kneighbors_detail(Q)
        judged.append(
            (
                nb.distances,
                clf.neighbor_labels(nb.indices),
                compared_pictures(method, Q, ds.fit_images, nb.indices[:, :k], nb.shifts),
            )
        )
    (vd, vl, vp), (dd, dl, dp) = judged
    ones = AbstainRule.calibrate(
        vd, vl, k=k, weights=method.weights, coverage=args.coverage, classes=np.arange(10), **vp
    )
    jv, jd = ones.judge(vd, vl, **vp), ones.judge(dd, dl, **dp)
    vw, dw = np.searchsorted(ones.classes, jv.winners), np.searchsorted(ones.classes, jd.winners)
    vf, df = jv.factors.copy(), jd.factors.copy()
    if args.overall_distance:  # the distance against the overall median, not the winner's class's
        scale = np.median(jv.nearest)
        vf[:, 0], df[:, 0] = jv.nearest / scale, jd.nearest / scale
    names = sorted(set(kinds))
    print(
        f"distance ratio: {'overall' if args.overall_distance else 'per class'} median; validation subset {args.subset}, design non-digits {len(X)} ({', '.join(names)}); coverage {args.coverage}"
    )
    print("ink pieces | design refused | least kind | " + " | ".join(names))
    best, best_key = None, None
    for ink in EXPONENT_GRID:
        for pieces in EXPONENT_GRID:
            e = np.array([1.0, 0.0, ink, 0.0, pieces])
            min_share, limits = _limits(np.exp(np.log(vf) @ e), vw, jv.share, 1 - args.coverage, 10)
            refused = (np.exp(np.log(df) @ e) > limits[dw]) | (jd.share < min_share)
            rates = [refused[kinds == n].mean() for n in names]
            key = (-min(rates), -refused.mean(), abs(ink - 1) + abs(pieces - 1))  # as fit_exponents chooses
            if best_key is None or key < best_key:
                best, best_key = e, key
            print(
                f"{ink:g} {pieces:g} | {refused.mean():.1%} | {min(rates):.0%} | "
                + " | ".join(f"{r:.0%}" for r in rates),
                flush=True,
            )
    min_share, limits = _limits(jv.nearest, vw, jv.share, 1 - args.coverage, 10)
    print(
        f"distance alone (no pictures): design refused "
        f"{((jd.nearest > limits[dw]) | (jd.share < min_share)).mean():.1%}"
    )
    if not args.held_out:
        return
    # Only now the held-out part and the test subset, for the chosen powers and the distance alone
    vs = np.exp(np.log(vf) @ best)
    min_share, limits = _limits(vs, vw, jv.share, 1 - args.coverage, 10)
    min_d, limits_d = _limits(jv.nearest, vw, jv.share, 1 - args.coverage, 10)
    full = KNNClassifier(k, method=method, weights=method.weights).fit(ds.train_images, ds.train_labels)
    allnd = [x for x in distinct(nondigit_drawings()) if x.kind != "digit-like"]
    ti = stratified_subset(ds.test_labels, args.subset, random_state=1)
    for what, Q, parts, kk in (
        (
            "non-digits",
            np.stack([x.digit for x in allnd]),
            np.array([x.part for x in allnd]),
            np.array([x.kind for x in allnd]),
        ),
        (f"test subset {args.subset}", ds.test_images[ti], None, None),
    ):
        nb = full.kneighbors_detail(Q)
        j = ones.judge(
            nb.distances,
            full.neighbor_labels(nb.indices),
            **compared_pictures(method, Q, ds.train_images, nb.indices[:, :k], nb.shifts),
        )
        f = j.factors.copy()
        w = np.searchsorted(ones.classes, j.winners)
        if args.overall_distance:
            f[:, 0] = j.nearest / np.median(jv.nearest)
        ref = (np.exp(np.log(f) @ best) > limits[w]) | (j.share < min_share)
        ref_d = (j.nearest > limits_d[w]) | (j.share < min_d)
        for label, r in ((f"powers {best.tolist()}", ref), ("distance alone", ref_d)):
            if parts is None:
                print(
                    f"{what}, {label}: coverage {1 - r.mean():.2%}, accuracy answered "
                    f"{np.mean(j.winners[~r] == ds.test_labels[ti][~r]):.2%}"
                )
            else:
                print(
                    f"{what}, {label}: held-out {r[parts == 'held-out'].mean():.1%}, design "
                    f"{r[parts == 'design'].mean():.1%}; held-out by kind "
                    + ", ".join(f"{n} {r[(parts == 'held-out') & (kk == n)].mean():.0%}" for n in names)
                )


if __name__ == "__main__":
    main()
