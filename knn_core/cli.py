"""Command line: knn-lab (or python -m knn_core) {evaluate,sweep,predict,misclassified,suspicious,baselines,methods,room}

Every table the app shows has its equivalent here. A problem with the input
(knn_core's own errors: a bad file, an unknown method, k out of range)
prints one line and exits with status 2; `predict` exits with 1 when some
image could not be classified. Anything else is a bug and shows its
traceback. Long searches show a tqdm progress bar.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

import numpy as np

from .abstain import (
    DEFAULT_COVERAGE,
    GATE_METHOD,
    abstain_rule,
    answered_accuracy,
    compared_pictures,
    gate_inputs,
    gate_share,
)
from .errors import DataError, KnnLabError, ParameterError
from .evaluate import DEFAULT_KS, choose_k, report, size_curve
from .lists import K_MAX, SPLITS, is_cached, neighbor_lists, split_data
from .methods import PRESETS, Method
from .room.cli import add_room_commands, cmd_room
from .search import METRICS
from .vote import TIE_BREAKS, WEIGHTS


def parse_ks(text: str) -> list[int]:
    """'1,3,5' or '1-50' or a mix: '1-10,15,25'."""
    ks: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                ks.extend(range(lo, hi + 1))
            elif part.strip():
                ks.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of k values: {text!r} (use e.g. 1,3,5 or 1-50)") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"k values must be whole numbers >= 1: {text!r}")
    return sorted(set(ks))


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of training-set sizes: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"training-set sizes must be >= 1: {text!r}")
    return sizes


@contextmanager
def progress_bar(desc: str):
    """A tqdm bar driven by knn_core's (done, total) progress callbacks."""
    from tqdm import tqdm

    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="digit", leave=False, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", metavar="NAME", help="a method preset instead of --metric/--p, e.g. idm or "
                   "deskew+blur+L3+shift1; its k and weights are the defaults (see: python -m knn_core methods)")
    p.add_argument("--metric", choices=METRICS, default="euclidean", help="distance (default: euclidean)")
    p.add_argument("--p", type=float, default=3, help="power of the minkowski metric (default: 3)")
    p.add_argument("--data", metavar="PATH", help="MNIST source (default: the bundled copy); see load_mnist")
    p.add_argument("--train-size", type=int, metavar="N", help="use a stratified subset of N training digits")


def add_vote_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", choices=WEIGHTS, default=None,
                   help="vote weights (default: uniform, or the method's)")
    p.add_argument("--tie-break", choices=TIE_BREAKS, default="smallest", help="tie rule (default: smallest)")


def add_abstain_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--abstain", action="store_true", help=what)
    p.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE, metavar="C",
                   help=f"share of validation digits the refusal must still answer (default: {DEFAULT_COVERAGE})")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the command line."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="knn-lab",
        description="k-nearest-neighbours on MNIST: evaluate, sweep k, classify image files.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = sub.add_parser("evaluate", help="accuracy, confusion matrix and per-class report on the test set")
    ev.add_argument("--k", type=int, default=None, help="number of neighbours (default: 5, or the method's k)")
    add_search_options(ev)
    add_vote_options(ev)
    add_abstain_options(ev, "also refuse what is not close enough to any digit (calibrated on validation) "
                        "and print the coverage and the accuracy on the answered digits")

    me = sub.add_parser("methods", help="the method presets (deskew, blur, L3, shifts, IDM) and the literature")
    me.add_argument("--data", metavar="PATH", help="MNIST source (default: the bundled copy); see load_mnist")

    sw = sub.add_parser("sweep", help="accuracy against k; the k chosen on validation and its test accuracy")
    sw.add_argument("--ks", type=parse_ks, default=list(DEFAULT_KS), help="k values, e.g. 1,3,5 or 1-50 (default: 1,3,5,9,15,25)")
    sw.add_argument("--split", choices=SPLITS, default="val", help="where to measure: val, test or loo (default: val)")
    sw.add_argument("--train-sizes", type=parse_sizes, metavar="N,N,...", help="instead: test accuracy against training-set size, e.g. 500,1000,5000,60000")
    add_search_options(sw)
    add_vote_options(sw)

    pr = sub.add_parser("predict", help="classify image files (PNG/JPEG photos, drawings or 28x28 MNIST digits)")
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--k", type=int, default=None, help="number of neighbours (default: 5, or the method's k)")
    add_search_options(pr)
    add_vote_options(pr)
    pr.add_argument("--no-abstain", dest="abstain", action="store_false",
                    help="answer every image with a digit (default: say 'not a digit' when it is too far from "
                         "every digit or its neighbours disagree, calibrated on the validation split)")
    pr.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE, metavar="C",
                    help=f"share of validation digits the refusal must still answer (default: {DEFAULT_COVERAGE})")

    mc = sub.add_parser("misclassified", help="the test digits classified wrongly, most confidently wrong first")
    mc.add_argument("--k", type=int, default=None, help="number of neighbours (default: 5, or the method's k)")
    mc.add_argument("--true", type=int, metavar="LABEL", help="only digits with this true label")
    mc.add_argument("--predicted", type=int, metavar="LABEL", help="only digits predicted as this label")
    mc.add_argument("--limit", type=int, metavar="N", help="print the first N only")
    add_search_options(mc)
    add_vote_options(mc)

    su = sub.add_parser("suspicious", help="digits whose label most of their k nearest neighbours disagree with")
    su.add_argument("--k", type=int, default=None, help="number of neighbours (default: 5, or the method's k)")
    su.add_argument("--set", choices=("train", "test"), default="train", dest="digits",
                    help="training digits (leave-one-out neighbours) or test digits (default: train)")
    su.add_argument("--limit", type=int, metavar="N", help="print the first N only")
    add_search_options(su)
    add_vote_options(su)

    bl = sub.add_parser("baselines", help="naive Bayes, logistic regression and SGD linear models beside kNN")
    bl.add_argument("--methods", type=lambda t: [m for m in t.split(",") if m.strip()], metavar="M,M,...",
                    help="gnb, logreg, sgd-hinge, sgd-log, knn-5, knn-best (default: all)")
    bl.add_argument("--features", type=lambda t: [f for f in t.split(",") if f.strip()], default=["pixels", "10x10"],
                    metavar="F,F", help="pixels and/or 10x10 (default: pixels,10x10)")
    bl.add_argument("--cv", type=int, default=3, help="cross-validation folds (default: 3)")
    bl.add_argument("--data", metavar="PATH", help="MNIST source (default: the bundled copy); see load_mnist")
    bl.add_argument("--train-size", type=int, metavar="N", help="use a stratified subset of N training digits")
    bl.add_argument("--save", metavar="PATH", help="also write the table as JSON, e.g. the one the app ships: "
                                                   "assets/baselines/mnist_full_cv3.json (all methods, full data)")

    add_room_commands(sub)
    return parser


def _dataset(args):
    from .data import load_mnist

    return load_mnist(args.data)


def _resolve_method(args) -> None:
    """args.method becomes a Method (--method NAME, else --metric/--p); --k and --weights not given:
    the method preset's vote (chosen on validation), else k=5, uniform."""
    if not hasattr(args, "metric"):
        return
    if args.method is not None and args.method not in PRESETS:
        raise ParameterError(f"unknown method {args.method!r}; choose one of {', '.join(PRESETS)}")
    args.method = Method.parse(args.method) if args.method else Method.classic(args.metric, args.p)
    if getattr(args, "k", 0) is None:
        args.k = args.method.k
    if getattr(args, "weights", "") is None:
        args.weights = args.method.weights


def _lists(args, ds, split: str, progress=None, train_size="args", method=None):
    """The neighbour lists of a split under the command's method (or `method`; cached on disk: the app shares
    them)."""
    train_size = args.train_size if train_size == "args" else train_size
    method = args.method if method is None else method
    return neighbor_lists(ds, method, split, train_size=train_size, k_max=K_MAX, progress=progress)


def _abstain_rule(args, ds):
    """The command's refusal rule, calibrated on validation (its searches first, with a progress bar; a
    method with a digit gate also searches the validation digits by GATE_METHOD)."""
    with progress_bar("calibrating on validation") as bar:
        _lists(args, ds, "val", bar)  # the rule reads them from the cache
    if gate_share(args.method) is not None:
        with progress_bar("calibrating the digit gate (raw pixels) on validation") as bar:
            _lists(args, ds, "val", bar, method=GATE_METHOD)
    return abstain_rule(ds, args.method, k=args.k, weights=args.weights, tie_break=args.tie_break,
                        coverage=args.coverage, train_size=args.train_size)


def _searched_by(args) -> str:
    return f"metric={args.method.metric}" if args.method.is_classic else f"method={args.method.name}"


def _check_k(k: int) -> None:
    if not 1 <= k <= K_MAX:
        raise ParameterError(f"--k must be between 1 and {K_MAX}; got {k}")


def cmd_evaluate(args) -> None:
    _check_k(args.k)
    ds = _dataset(args)
    with progress_bar("searching") as bar:  # K_MAX neighbours: the same cache entry as the app's
        lists = _lists(args, ds, "test", bar)
    pred = lists.predict(args.k, weights=args.weights, tie_break=args.tie_break)
    rep = report(lists.query_labels, pred)
    lit = ""
    if args.method.preset:
        preset = PRESETS[args.method.preset]
        print(f"{preset.name}: {preset.recipe.describe()}; the test set's search took {lists.seconds:.0f} s "
              "when computed")
        if preset.literature is not None:
            lit = f"; literature {preset.literature:.2f}% ({preset.source})"
    print(f"kNN k={args.k} {_searched_by(args)} weights={args.weights} tie-break={args.tie_break} "
          f"train={len(lists.train_labels)} test={len(lists.query_labels)}")
    print(f"accuracy: {rep.accuracy:.4f}  (test error {100 * (1 - rep.accuracy):.2f}%{lit})")
    if args.abstain:
        rule = _abstain_rule(args, ds)
        gate_lists = None
        if rule.gate is not None:
            with progress_bar("the digit gate's search (raw pixels)") as bar:
                gate_lists = _lists(args, ds, "test", bar, method=GATE_METHOD)
        judged = rule.judge_lists(lists, ds.test_images, ds.train_images, gate_lists)
        gated = "" if rule.gate is None else f", with the digit gate ({GATE_METHOD} on raw pixels) asked too"
        print(f"abstaining (calibrated on validation to answer {rule.coverage:.2%} of its digits{gated}): "
              f"coverage {judged.coverage:.4f} ({int(judged.refused.sum())} test digits refused), "
              f"accuracy on the answered {answered_accuracy(judged, lists.query_labels):.4f}")
    print("\nconfusion matrix (rows: true label, columns: predicted)")
    print(rep.confusion_table())
    print("\nper-class report")
    print(rep.table())


def cmd_sweep(args) -> None:
    ds = _dataset(args)
    vote = dict(weights=args.weights, tie_break=args.tie_break)
    if args.train_sizes:
        with progress_bar("training-set sizes") as bar:
            acc = size_curve(ds, args.train_sizes, args.ks, method=args.method, progress=bar, **vote)
        print("test accuracy against training-set size (stratified subsets)")
        print(f"{'size':>7} " + " ".join(f"{'k=' + str(k):>7}" for k in args.ks))
        for n, row in zip(args.train_sizes, acc):
            print(f"{min(n, len(ds.train_labels)):>7} " + " ".join(f"{a:7.4f}" for a in row))
        return
    if max(args.ks) > K_MAX:
        raise ParameterError(f"k values above {K_MAX} are not swept (got {max(args.ks)})")
    choose_on = "loo" if args.split == "loo" else "val"
    with progress_bar(f"searching ({choose_on})") as bar:
        chooser = _lists(args, ds, choose_on, bar)
    with progress_bar("searching (test)") as bar:
        test = _lists(args, ds, "test", bar)
    shown = {"val": chooser, "loo": chooser, "test": test}[args.split]
    acc = shown.sweep(args.ks, **vote)
    print(f"accuracy against k on the {args.split} split ({_searched_by(args)}, weights={args.weights})")
    print(f"{'k':>4} {'accuracy':>9}")
    for k, a in zip(args.ks, acc):
        print(f"{k:>4} {a:9.4f}")
    best = choose_k(chooser, args.ks, **vote)
    where = "validation" if choose_on == "val" else "leave-one-out"
    print(f"\nk chosen on {where}: {best} ({where} accuracy {chooser.accuracy(best, **vote):.4f}); "
          f"test accuracy at k={best}: {test.accuracy(best, **vote):.4f}")


def read_image_file(path: str) -> np.ndarray:
    """A 28x28 PNG or JPEG is taken as an MNIST digit as it is; anything else as a photo or drawing
    (knn_core.photo, which bounds the work whatever the file holds)."""
    import io

    from PIL import Image, UnidentifiedImageError

    from .photo import photo_to_mnist

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror})") from exc
    try:
        img = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])  # reads the header only
        if img.size == (28, 28):
            grey = np.asarray(img.convert("L"))
            return grey if np.median(grey) < 128 else 255 - grey
    except (UnidentifiedImageError, OSError, ValueError):
        pass  # not a readable 28x28 digit: the photo path says what is wrong with it
    return photo_to_mnist(data)


def cmd_predict(args) -> None:
    from .classifier import KNNClassifier

    _check_k(args.k)
    ds = _dataset(args)
    X, y, _, _, _ = split_data(ds, "test", args.train_size)
    clf = KNNClassifier(args.k, method=args.method, weights=args.weights, tie_break=args.tie_break).fit(X, y)
    rule = gate = None
    if args.abstain:
        rule = _abstain_rule(args, ds)
        if rule.gate is not None:  # the digit gate: a plain search of the same training digits
            gate = KNNClassifier(rule.gate.k, method=GATE_METHOD, weights=rule.gate.weights).fit(X, y)
    failed = 0
    for path in args.images:
        try:
            digit = read_image_file(path)
        except KnnLabError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        nb = clf.kneighbors_detail(digit[None])
        d, i = nb.distances, nb.indices
        vote = clf.explain(d[0], i[0])
        neighbours = " ".join(f"{y[j]}({dist:.0f})" for j, dist in zip(i[0], d[0]))
        judged = None
        if rule is not None:
            pics = compared_pictures(clf.method_, digit[None], X, i[:, : args.k], nb.shifts) if rule.uses_pictures else {}
            raw = None
            if gate is not None:
                gd, gi = gate.kneighbors(digit[None])
                raw = gate_inputs(gd, gate.neighbor_labels(gi), digit[None], X, gi)
            judged = rule.judge(d, clf.neighbor_labels(i), **pics, gate=raw)
        if judged is not None and judged.refused[0]:
            print(f"{path}: not a digit ({judged.reasons[0]}); the nearest digits anyway: {vote.winner}   "
                  f"neighbours: {neighbours}")
        else:
            print(f"{path}: {vote.winner}   neighbours: {neighbours}   {vote.describe()}")
    if failed:
        raise SystemExit(1)


def _neighbour_labels(lists, k: int, queries) -> list[str]:
    return [" ".join(str(v) for v in row) for row in lists.neighbor_labels(k)[queries].tolist()]


def cmd_misclassified(args) -> None:
    """The table of the app's Misclassified page (and of a cell of its confusion matrix)."""
    from .evaluate import wrong_votes

    _check_k(args.k)
    ds = _dataset(args)
    with progress_bar("searching") as bar:
        lists = _lists(args, ds, "test", bar)
    wrong = wrong_votes(lists, args.k, weights=args.weights, tie_break=args.tie_break)
    keep = np.ones(len(wrong["index"]), bool)
    if args.true is not None:
        keep &= wrong["true"] == args.true
    if args.predicted is not None:
        keep &= wrong["predicted"] == args.predicted
    rank = np.flatnonzero(keep)[: args.limit]
    print(f"kNN k={args.k} {_searched_by(args)} weights={args.weights} tie-break={args.tie_break} "
          f"train={len(lists.train_labels)} test={len(lists.query_labels)}")
    print(f"{len(wrong['index'])} misclassified test digits, {int(keep.sum())} shown by the filter; "
          "most confidently wrong first")
    print(f"{'rank':>5} {'test':>5} {'true':>4} {'pred':>4} {'confidence':>10}  neighbours (nearest first)")
    neighbours = _neighbour_labels(lists, args.k, wrong["index"][rank])
    for r, nb in zip(rank.tolist(), neighbours):
        print(f"{r + 1:>5} {wrong['index'][r]:>5} {wrong['true'][r]:>4} {wrong['predicted'][r]:>4} "
              f"{wrong['confidence'][r]:>10.4f}  {nb}")


def cmd_suspicious(args) -> None:
    """The table of the app's Suspicious labels page."""
    from .evaluate import label_doubts

    _check_k(args.k)
    ds = _dataset(args)
    split = "loo" if args.digits == "train" else "test"
    with progress_bar("searching") as bar:
        lists = _lists(args, ds, split, bar)
    doubts = label_doubts(lists, args.k, weights=args.weights, tie_break=args.tie_break)
    rows = lists.train_rows if split == "loo" else np.arange(len(ds.test_labels))
    shown = np.arange(len(doubts["index"]))[: args.limit]
    where = "leave-one-out neighbours" if split == "loo" else "nearest training digits"
    print(f"kNN k={args.k} {_searched_by(args)} weights={args.weights} tie-break={args.tie_break} "
          f"train={len(lists.train_labels)}")
    print(f"{len(doubts['index'])} {args.digits} digits whose label most of their {args.k} {where} "
          "disagree with; most disagreement first")
    print(f"{'rank':>5} {args.digits:>5} {'label':>5} {'kNN':>4} {'disagree':>8}  neighbours (nearest first)")
    neighbours = _neighbour_labels(lists, args.k, doubts["index"][shown])
    for r, nb in zip(shown.tolist(), neighbours):
        print(f"{r + 1:>5} {rows[doubts['index'][r]]:>5} {doubts['label'][r]:>5} {doubts['predicted'][r]:>4} "
              f"{doubts['disagreement'][r]:>8.2f}  {nb}")


def cmd_baselines(args) -> None:
    """The table of the app's Baselines page: cross-validation and test accuracy, fit and predict times."""
    import time

    from tqdm import tqdm

    from .baselines import format_table, run_baselines

    ds = _dataset(args)
    t0 = time.perf_counter()
    with tqdm(desc="baselines", unit="step", file=sys.stderr, leave=False, delay=0.5) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        rows = run_baselines(ds, args.methods, args.features, cv=args.cv, train_size=args.train_size,
                             progress=progress, status=bar.set_postfix_str)
    print(f"train={rows[0].n_train if rows else 0} test={len(ds.test_labels)} cv={args.cv} "
          f"(StratifiedKFold, unshuffled); times are wall-clock seconds when each row was computed")
    print(format_table(rows))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s for this command (cached rows cost nothing)")
    if args.save:
        from .baselines import save_table

        save_table(rows, args.save, ds, args.cv)
        print(f"saved to {args.save}")


def cmd_methods(args) -> None:
    """The presets, their literature figures and, where cached, their measured test error."""
    ds = _dataset(args)
    print("| method | recipe | k, votes | test error % (measured) | literature % |")
    print("|---|---|---|---|---|")
    for name, p in PRESETS.items():
        if is_cached(ds, name, "test", k_max=K_MAX):
            lists = neighbor_lists(ds, name, "test", k_max=K_MAX)
            measured = f"{100 * (1 - lists.accuracy(p.k, weights=p.weights)):.2f}"
        else:
            measured = "not yet (evaluate --method " + name + ")"
        lit = f"{p.literature:.2f} ({p.source})" if p.literature is not None else "-"
        print(f"| {name} | {p.recipe.describe()} | {p.k}, {p.weights} | {measured} | {lit} |")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _resolve_method(args)
        {"evaluate": cmd_evaluate, "sweep": cmd_sweep, "predict": cmd_predict,
         "misclassified": cmd_misclassified, "suspicious": cmd_suspicious,
         "baselines": cmd_baselines, "methods": cmd_methods, "room": cmd_room}[args.command](args)
    except KnnLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0

