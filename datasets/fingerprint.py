"""Fingerprints of loaded data: a short hash of the arrays a run saw, so two runs can tell whether they saw the same.

The fingerprint is a function of the returned arrays only (x_train, y_train, x_test, y_test with their shapes),
the class names and the split name: the same arrays give the same fingerprint whichever file, cache or path they
came from. It is built from one digest per image, so adapters that cache decoded images store the digests with
them, and a warm load or a split of the cached images combines stored digests instead of re-hashing the pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bench.datasets.base import ImageData

# Bumped whenever the definition below changes, so fingerprints of different definitions never compare equal.
FINGERPRINT_VERSION = 1
# Hex digits kept of the final sha256: 64 bits, ample to tell data sets apart, short enough for a table cell.
FINGERPRINT_HEX = 16
# Bytes kept of each image's sha256 (128 bits per image).
DIGEST_BYTES = 16
# Suffix of the cache arrays holding the per-image digests of an image array ('x' -> 'x_digests').
DIGESTS = "_digests"
# Read size when hashing a source file.
_FILE_CHUNK = 1 << 20


class Side(NamedTuple):
    """One side (train or test) of a data set as the fingerprint sees it."""

    shape: tuple[int, ...]  # the image array's shape (N, H, W, C)
    digests: np.ndarray  # (N, DIGEST_BYTES) uint8, one digest per image, in order
    labels: np.ndarray  # (N,) integer labels


def image_digests(x: np.ndarray) -> np.ndarray:
    """One sha256 digest (first DIGEST_BYTES bytes) per image of x (N, ...), as an (N, DIGEST_BYTES) uint8 array."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    joined = b"".join(hashlib.sha256(row).digest()[:DIGEST_BYTES] for row in rows)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(x), DIGEST_BYTES).copy()


def with_digests(arrays: Mapping[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays plus '<name>_digests' for each named image array, to store in the cache beside them."""
    return {**arrays, **{f"{n}{DIGESTS}": image_digests(arrays[n]) for n in names}}


def side(x_shape: tuple[int, ...], digests: np.ndarray, labels: np.ndarray,
         index: np.ndarray | None = None) -> Side:
    """A Side of cached images and their digests, optionally the rows at `index` only (a split)."""
    if index is None:
        return Side(tuple(x_shape), digests, labels)
    return Side((len(index), *x_shape[1:]), digests[index], labels[index])


def combine(train: Side, test: Side, class_names: Sequence[str], split: str) -> str:
    """The fingerprint of a data set from its sides' digests and labels, the class names and the split."""
    h = hashlib.sha256()
    header = {"version": FINGERPRINT_VERSION, "dtype": "uint8", "class_names": [str(c) for c in class_names],
              "split": split, "x_train": list(train.shape), "x_test": list(test.shape)}
    h.update(json.dumps(header, sort_keys=True).encode())
    for s in (train, test):
        if len(s.digests) != s.shape[0] or len(s.labels) != s.shape[0]:
            raise ValueError(f"{len(s.digests)} digests and {len(s.labels)} labels for images {s.shape}")
        h.update(b"\0")
        h.update(np.ascontiguousarray(s.digests, dtype=np.uint8).tobytes())
        # Labels hash as little-endian int64 whatever integer type holds them.
        h.update(np.asarray(s.labels).astype("<i8").tobytes())
    return h.hexdigest()[:FINGERPRINT_HEX]


def of_cached(arrays: Mapping[str, np.ndarray], class_names: Sequence[str], split: str,
              train: np.ndarray | None = None, test: np.ndarray | None = None) -> str:
    """The fingerprint of data made from cache arrays and their stored digests, without re-hashing pixels.

    A given split ('x_train', 'y_train', 'x_test', 'y_test') is returned as cached; one set ('x', 'y') is
    split by the index arrays train and test.
    """
    if "x" in arrays:
        if train is None or test is None:
            raise ValueError("one cached set needs the train and test indices of its split")
        x, y, d = arrays["x"], arrays["y"], arrays[f"x{DIGESTS}"]
        return combine(side(x.shape, d, y, train), side(x.shape, d, y, test), class_names, split)
    return combine(side(arrays["x_train"].shape, arrays[f"x_train{DIGESTS}"], arrays["y_train"]),
                   side(arrays["x_test"].shape, arrays[f"x_test{DIGESTS}"], arrays["y_test"]), class_names, split)


def fingerprint(data: ImageData) -> str:
    """The fingerprint of a loaded data set, hashed from its arrays (~0.2 s for all of CIFAR-10)."""
    return combine(Side(data.x_train.shape, image_digests(data.x_train), data.y_train),
                   Side(data.x_test.shape, image_digests(data.x_test), data.y_test),
                   data.class_names, data.split)


def provenance(fingerprint_hex: str, data_format: str, pixels: str) -> dict[str, Any]:
    """The info entries every adapter sets: fingerprint, format (what was read) and pixels (canonical or lossy)."""
    return {"fingerprint": fingerprint_hex, "format": data_format, "pixels": pixels}


def ensure(data: ImageData) -> ImageData:
    """The data with a fingerprint (and empty format and pixels) in its info if its adapter did not set them."""
    missing = {k: "" for k in ("format", "pixels") if k not in data.info}
    if "fingerprint" not in data.info:
        missing["fingerprint"] = fingerprint(data)
    return data.replace(info={**data.info, **missing}) if missing else data


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex); '' for a folder."""
    if not path.is_file():
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_FILE_CHUNK):
            h.update(chunk)
    return h.hexdigest()
