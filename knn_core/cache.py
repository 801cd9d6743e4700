"""Results cached on disk, keyed by everything that determines them.

Entries are .npz files (arrays only, read with allow_pickle=False, so a
tampered cache cannot run code). Writes go to a temporary file that is
renamed into place, so a process killed mid-write leaves no entry that reads
as valid. A corrupt or unreadable entry, or a folder that cannot be written,
is a warning and a recomputation, never a crash.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

CACHE_ENV = "KNN_DIGIT_LAB_CACHE"
# Bump when a change to the code changes what a cached result would hold.
CODE_VERSION = "1"

log = logging.getLogger(__name__)
_warned: set = set()
warnings_seen: list = []  # for pages that show them once: no paths (the server's log has them)


def cache_dir() -> Path:
    """$KNN_DIGIT_LAB_CACHE, or ~/.cache/knn-digit-lab."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "knn-digit-lab"


def fingerprint(*arrays) -> str:
    """A short hash of array contents (shape and dtype included)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.data.cast("B"))
    return h.hexdigest()[:20]


def cache_key(**parts) -> str:
    text = json.dumps({"code": CODE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _warn_once(message: str, path: Path, public: str) -> None:
    """Log a cache problem once per process: `{where}` is the full path in the log, `public` for pages
    (which must not show the server's paths)."""
    logged = message.format(where=path)
    if logged not in _warned:
        _warned.add(logged)
        warnings_seen.append(message.format(where=public))
        log.warning(logged)


def entry_path(name: str, parts: dict) -> Path:
    """Where the entry of `name` with these key parts is (or would be) stored."""
    return cache_dir() / f"{name}-{cache_key(name=name, **parts)}.npz"


def is_cached(name: str, parts: dict) -> bool:
    """Whether cached_arrays(name, parts, ...) would read an entry instead of computing (computes nothing)."""
    return entry_path(name, parts).exists()


def cached_arrays(name: str, parts: dict, compute: Callable[[], dict], *, use_cache: bool = True) -> dict:
    """`compute()`'s dict of arrays, from the cache when a valid entry exists."""
    if not use_cache:
        return compute()
    key = cache_key(name=name, **parts)
    path = entry_path(name, parts)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                stored = {k: f[k] for k in f.files}
            if str(stored.pop("__key__", "")) == key:
                return stored
            _warn_once("cache entry {where} does not match its key; recomputing", path, path.name)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            _warn_once(f"cache entry {{where}} is unreadable ({type(exc).__name__}); recomputing", path, path.name)
    result = compute()
    _write_atomic(path, {**result, "__key__": np.array(key)})
    return result


def _write_atomic(path: Path, arrays: dict) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        _warn_once(f"results cannot be cached in {{where}} ({exc.strerror or type(exc).__name__}); they will be "
                   "recomputed", path.parent, f"the cache folder (${CACHE_ENV})")
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
