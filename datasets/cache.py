"""The prepared-data cache: decoded arrays as compressed .npz, keyed on source identity and options."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# Where prepared arrays live unless BENCH_CACHE_DIR says otherwise.
DEFAULT_CACHE_DIR = Path("~/.cache/bench")
# Bumped whenever what an adapter stores changes, so older entries are never read as current.
FORMAT_VERSION = 2  # 2: per-image digests, the images' encoding and the source's sha256 stored too
# zlib level for the cache: level 1 is several times faster than the default 6 on image data for a
# slightly larger file, and the cache is written on every cold load.
COMPRESS_LEVEL = 1
_META = "__meta__"


def cache_dir() -> Path:
    """The cache folder: $BENCH_CACHE_DIR, else ~/.cache/bench."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or DEFAULT_CACHE_DIR).expanduser()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def entry_path(adapter: str, source: Path, options: Mapping[str, Any], fingerprint: str) -> Path:
    """The cache file for these arrays: '<adapter>-<which source+options>-<source state>.npz'."""
    which = _digest([FORMAT_VERSION, adapter, str(source.resolve()), dict(options)])[:16]
    state = _digest(fingerprint)[:16]
    return cache_dir() / f"{adapter}-{which}-{state}.npz"


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata stored at path, or None when absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k != _META}
            meta = json.loads(str(npz[_META]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    return arrays, meta


def save(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bool:
    """Writes the entry atomically (temp file + rename); drops stale entries of the same source and options.

    A cache that cannot be written only costs speed, so failures warn and return False.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED,
                                                            compresslevel=COMPRESS_LEVEL) as zf:
                for name, arr in {**arrays, _META: np.array(json.dumps(dict(meta), default=str))}.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(f"could not write the data cache {path} ({exc}); set BENCH_CACHE_DIR to a "
                      "writable folder", stacklevel=2)
        return False
    prefix = path.stem.rsplit("-", 1)[0] + "-"
    for old in path.parent.glob(f"{prefix}*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
    return True


def cached(adapter: str, source: Path, fingerprint: str, options: Mapping[str, Any],
           build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
           ) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """The arrays for (source, options) from the cache, else built and stored; also 'hit' or 'miss'."""
    path = entry_path(adapter, source, options, fingerprint)
    found = load(path)
    if found is not None:
        return *found, "hit"
    arrays, meta = build()
    save(path, arrays, meta)
    return arrays, meta, "miss"
