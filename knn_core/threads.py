"""One BLAS thread: the one place knn_core limits numpy's BLAS threads.

On these 2-core machines the parallelism is ours (two search workers, or the
sessions of a server), not BLAS's: OpenBLAS's extra threads spin waiting for
work after each small product and, when the cores are shared, make skinny
products many times slower (a PCA fit took 45 s instead of 2.6 s; logistic
regression 4.7 instead of 0.3 CPU-s). The limit is process-wide while it holds.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_controller: list = []
_lock = threading.Lock()


def _blas_controller():
    """threadpoolctl's controller, built once (building it costs ~0.1 s)."""
    from threadpoolctl import ThreadpoolController

    with _lock:
        if not _controller:
            _controller.append(ThreadpoolController())
    return _controller[0]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread while inside (process-wide), restored afterwards."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def limit_blas_threads(n: int = 1) -> None:
    """numpy's BLAS on n threads from now on, for the whole process (a server: its sessions are the parallelism)."""
    _blas_controller().limit(limits=n, user_api="blas")
