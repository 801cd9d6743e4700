"""Speed and memory of kNN on full MNIST, side by side with the references.

Each method runs in its own child process (so peak memory is its own):
all 10,000 test digits against 60,000 training digits, k=5 euclidean, and
one digit at a time. Prints a markdown table with ratios to scikit-learn's
brute force, all from this one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/knn_speed.py

faiss-cpu is optional (pip install faiss-cpu); its bundled OpenBLAS picks a
slow generic kernel here unless OPENBLAS_CORETYPE names the real core, so it
is run twice: as is, and with OPENBLAS_CORETYPE set to what threadpoolctl
reports for numpy's OpenBLAS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

K = 5


def load():
    from knn_core import load_mnist

    ds = load_mnist()
    return (ds.train_images.reshape(60000, -1), ds.train_labels,
            ds.test_images.reshape(10000, -1), ds.test_labels)


def method_knn_core(Xtr, ytr):
    from knn_core import KNNClassifier

    clf = KNNClassifier(K).fit(Xtr, ytr)
    return clf.predict, lambda q: clf.kneighbors(q)


def method_sklearn(Xtr, ytr):
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(K, algorithm="brute").fit(Xtr.astype(np.float32), ytr)
    return (lambda X: clf.predict(X.astype(np.float32))), (lambda q: clf.kneighbors(q.astype(np.float32)))


def method_numpy(Xtr, ytr):
    """The plain float32 matrix-product kNN (chunks, argpartition, majority vote)."""
    Y = Xtr.astype(np.float32)
    ysq = np.einsum("ij,ij->i", Y, Y)

    def kneighbors(Q):
        Q = Q.astype(np.float32)
        out = np.empty((len(Q), K), dtype=np.int64)
        for s in range(0, len(Q), 1024):
            D = ysq - 2.0 * (Q[s : s + 1024] @ Y.T)
            part = np.argpartition(D, K - 1, axis=1)[:, :K]
            order = np.argsort(np.take_along_axis(D, part, 1), axis=1)
            out[s : s + 1024] = np.take_along_axis(part, order, 1)
        return out

    def predict(Q):
        lab = ytr[kneighbors(Q)]
        return np.array([np.bincount(r, minlength=10).argmax() for r in lab])

    return predict, kneighbors


def method_faiss(Xtr, ytr):
    import faiss

    index = faiss.IndexFlatL2(Xtr.shape[1])
    index.add(Xtr.astype(np.float32))

    def kneighbors(Q):
        return index.search(np.ascontiguousarray(Q, dtype=np.float32), K)[1]

    def predict(Q):
        lab = ytr[kneighbors(Q)]
        return np.array([np.bincount(r, minlength=10).argmax() for r in lab])

    return predict, kneighbors


METHODS = {"knn_core": method_knn_core, "sklearn": method_sklearn, "numpy": method_numpy, "faiss": method_faiss}


def run_one(name: str, repeats: int, queries: int) -> dict:
    Xtr, ytr, Xte, yte = load()
    t = time.perf_counter()
    predict, kneighbors = METHODS[name](Xtr, ytr)
    fit = time.perf_counter() - t
    predict(Xte[:200])  # warm up: first touch of fresh memory is slow on these VMs
    full, acc = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        pred = predict(Xte)
        full.append(time.perf_counter() - t)
        acc = float(np.mean(pred == yte))
    one = []
    for j in range(queries):
        q = Xte[j : j + 1]
        t = time.perf_counter()
        kneighbors(q)
        one.append(time.perf_counter() - t)
    from threadpoolctl import threadpool_info

    blas = sorted({f"{i['internal_api']}:{i.get('architecture')}" for i in threadpool_info() if i["user_api"] == "blas"})
    return {
        "method": name,
        "fit_s": fit,
        "full_s": float(np.median(full)),
        "accuracy": acc,
        "one_ms_median": 1e3 * float(np.median(one)),
        "one_ms_p95": 1e3 * float(np.percentile(one, 95)),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blas": ", ".join(blas),
        "env": os.environ.get("OPENBLAS_CORETYPE", ""),
    }


def child(name: str, repeats: int, queries: int, env_extra=None) -> dict | None:
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, __file__, "--child", name, "--repeats", str(repeats), "--queries", str(queries)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        print(f"({name} failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode})")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="full test-set runs per method (median reported)")
    ap.add_argument("--queries", type=int, default=200, help="single-digit queries per method")
    ap.add_argument("--methods", default="sklearn,numpy,faiss,knn_core")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.repeats, args.queries)))
        return

    from threadpoolctl import threadpool_info

    core = next((i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"), None)
    rows = []
    for name in args.methods.split(","):
        if name == "faiss":
            try:
                import faiss  # noqa: F401
            except ImportError:
                print("(faiss-cpu not installed: skipped)")
                continue
            r = child(name, args.repeats, args.queries)
            if r:
                rows.append(r)
            if core:
                r = child(name, args.repeats, args.queries, {"OPENBLAS_CORETYPE": core})
                if r:
                    r["method"] = f"faiss (OPENBLAS_CORETYPE={core})"
                    rows.append(r)
            continue
        r = child(name, args.repeats, args.queries)
        if r:
            rows.append(r)
    ref = next((r for r in rows if r["method"] == "sklearn"), None)
    print(f"\nfull MNIST: 10,000 test x 60,000 train, k={K} euclidean; {os.cpu_count()} cores; "
          f"medians of {args.repeats} full runs and {args.queries} single queries; BLAS kernel: {core}\n")
    print("| method | test set (s) | vs scikit-learn | accuracy | one query median (ms) | one query p95 (ms) | peak memory (MB) | fit (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['full_s'] / ref['full_s']:.2f}x" if ref else "-"
        print(f"| {r['method']} | {r['full_s']:.2f} | {ratio} | {r['accuracy']:.4f} | {r['one_ms_median']:.2f} | "
              f"{r['one_ms_p95']:.2f} | {r['peak_mb']:.0f} | {r['fit_s']:.2f} |")


if __name__ == "__main__":
    main()
