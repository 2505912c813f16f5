"""CIFAR-10 from the canonical pickled batches (tar.gz or folder, as Keras caches them) or image folders."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

import numpy as np

from bench.datasets import cache, gzip_ahead, sources
from bench.datasets.base import DatasetError, DatasetUnavailable, ImageData
from bench.datasets.checks import check_flag, check_path
from bench.datasets.fetchable import Fetchable
from bench.datasets.fingerprint import DIGESTS, file_sha256, image_digests, of_cached, provenance
from bench.datasets.folder import decode_layout, source_info
from bench.datasets.layouts import scan
from bench.datasets.trees import DirTree, file_state, open_tree

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
BATCHES_DIR = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# File and folder names looked for inside BENCH_DATA_DIR, in order: canonical first, then image-folder copies.
KNOWN_NAMES = (BATCHES_DIR, "cifar-10-python.tar.gz", "cifar10", "cifar10-jpeg.zip", "cifar10.zip")
IMAGE_SHAPE = (32, 32, 3)
# Name endings of the archives the pickled batches come in; a file so named is read as one (or reported damaged).
TAR_ENDINGS = (".tar.gz", ".tgz", ".tar")
# What the published data promise (the CIFAR-10 page): 10,000 images in each of the five training batches and
# in the test batch, 3,072 bytes a row (three 32x32 colour planes), labels 0..9.
ROWS_PER_BATCH = 10_000
ROW_BYTES = 3072
# The published cifar-10-python.tar.gz: its size, and the SHA-256 Keras' loader checks it against
# (keras.datasets.cifar10); the CIFAR-10 page gives its MD5, c58f30108f718f92721af3b95e74349a. The SHA-256 is
# taken of every source file anyway (the entry's source_sha256), so comparing it costs nothing more.
PUBLISHED_SIZE = 170_498_071
PUBLISHED_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
EXPECTED_LAYOUT = (f"the pickled batches ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH}, {META_FILE}) in a folder "
                   "or in cifar-10-python.tar.gz, or image folders train/<class>/*, test/<class>/* (folder "
                   f"or zip) with the classes {', '.join(CLASS_NAMES)}")
# The 'format' entries of the canonical sources: Keras' download and its extracted folder.
TAR_FORMAT = "cifar-10-python.tar.gz (canonical pickled batches)"
FOLDER_FORMAT = f"{BATCHES_DIR} folder (canonical pickled batches)"
# The pickles hold only a dict of bytes, lists and numpy arrays; nothing else may be built while reading
# them, so a crafted file cannot run code.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"), ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
}


def keras_places() -> tuple[Path, ...]:
    """Where keras.datasets.cifar10 leaves the extracted batches (Keras 3, then Keras 2): in Keras' home as set
    (the harness's cache, for its run processes), then in Keras' default home, ~/.keras, where a download made
    outside the harness stays."""
    homes = dict.fromkeys([sources.keras_home(), sources.DEFAULT_KERAS_HOME.expanduser()])
    return tuple(place for home in homes for place in (home / "datasets" / "cifar-10-batches-py-target" / BATCHES_DIR,
                                                        home / "datasets" / BATCHES_DIR))


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], where: str) -> None:
        super().__init__(file, encoding="bytes")
        self.where = where  # the batch file, for the refusal

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise DatasetError(f"{self.where} refers to {module}.{name}, which the canonical batches never do, "
                               "and was not unpickled (it could run code); it is not a CIFAR-10 batch: download "
                               "cifar-10-python.tar.gz again")
        return super().find_class(module, name)


def read_batch(data: IO[bytes], where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch, read from a binary file, as its raw uint8 rows (N, 3072: R, G, B planes) and int64
    labels; to_images makes the rows images."""
    try:
        batch = _SafeUnpickler(data, where).load()
        raw = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"])
    except (pickle.UnpicklingError, EOFError, OSError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DatasetError(f"{where} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
                           "download cifar-10-python.tar.gz again") from exc
    if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != ROW_BYTES:
        raise DatasetError(f"{where}: expected rows of {ROW_BYTES} bytes (uint8 (N, {ROW_BYTES})), got "
                           f"{raw.dtype} {raw.shape}; the file is not a CIFAR-10 batch: download "
                           "cifar-10-python.tar.gz again")
    if labels.ndim != 1 or len(labels) != len(raw):
        raise DatasetError(f"{where}: {len(raw)} rows but {labels.size} labels; the file is damaged: download "
                           "cifar-10-python.tar.gz again")
    if len(labels) and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
                        or labels.max() >= len(CLASS_NAMES)):
        raise DatasetError(f"{where}: labels must be whole numbers 0..{len(CLASS_NAMES) - 1}, found "
                           f"{labels.min()}..{labels.max()}; the file is damaged: download "
                           "cifar-10-python.tar.gz again")
    return raw, labels.astype(np.int64)


def to_images(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rows of three 1024-byte colour planes (R, G, B), each 32x32 row-major, as images (N, 32, 32, 3), written
    into `out` (C-contiguous) when given.

    One plane at a time, so each read is contiguous and each write strides by 3 bytes, where numpy's copy of
    the transposed view reads with a stride of 1024 for every byte.
    """
    if out is None:
        out = np.empty((len(raw), *IMAGE_SHAPE), dtype=np.uint8)
    pixels = out.reshape(len(raw), 1024, 3)
    for channel in range(3):
        pixels[:, :, channel] = raw[:, channel * 1024:(channel + 1) * 1024]
    return out


@contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """The tar archive at path; a gzipped one (cifar-10-python.tar.gz) is inflated by a helper thread ahead of
    the reading, so inflating and unpickling use two cores."""
    if not gzip_ahead.is_gzip(path):
        with tarfile.open(path) as tar:
            yield tar
        return
    # Buffered like gzip.GzipFile: a batch's 30 MB are then read straight into the bytes the unpickler gets.
    # Closing the stream (tarfile leaves a file it was given open) stops the helper wherever the reading ends.
    with io.BufferedReader(gzip_ahead.GzipAhead(path)) as stream, tarfile.open(fileobj=stream, mode="r:") as tar:
        yield tar


def _batch_files(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """Each batch file's base name and an open binary file of it, one at a time: each is unpickled straight
    from the archive's stream, never held as bytes beside its array."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META_FILE}
    found: set[str] = set()
    if path.is_file():
        try:
            with _open_tar(path) as tar:
                for member in tar:
                    base = PurePosixPath(member.name).name
                    if member.isfile() and base in wanted:
                        found.add(base)
                        yield base, tar.extractfile(member)  # type: ignore[misc]
        except (tarfile.TarError, OSError, EOFError) as exc:
            reason = " ".join(str(exc).split())  # tarfile lists each method it tried on a line of its own
            raise DatasetError(f"{path} is not a readable tar archive (truncated or damaged: "
                               f"{type(exc).__name__}: {reason}); download cifar-10-python.tar.gz again") from exc
    else:
        for name in sorted(wanted):
            if (path / name).is_file():
                found.add(name)
                with open(path / name, "rb") as fh:
                    yield name, fh
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in found]
    if missing:
        raise DatasetError(f"{path}: CIFAR-10 batches {', '.join(missing)} are missing. Expected "
                           f"{EXPECTED_LAYOUT}. Found: {', '.join(sorted(found)) or 'none of them'}")


def _check_meta(data: IO[bytes], path: Path) -> None:
    try:
        meta = _SafeUnpickler(data, f"{path}/{META_FILE}").load()
        names = tuple(n.decode() for n in meta[b"label_names"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}/{META_FILE} is not readable ({exc}); download cifar-10-python.tar.gz "
                           "again") from exc
    if names != CLASS_NAMES:
        raise DatasetError(f"{path}/{META_FILE} names the classes {list(names)}, not CIFAR-10's "
                           f"{list(CLASS_NAMES)}")


class _Side:
    """One side's batches (the five training ones, or the test one) copied into one image array as they are
    read, in whatever order the archive holds them, with their per-image digests; each batch's raw rows can
    then be freed before the next is read, and the digests are taken while the helper thread inflates on.

    Holding all raw batches and concatenating them at the end would keep the freed batches in the heap
    (results/README.md#data-loading has the memory each way). The canonical batches are equal in size, so each
    has its slot from the first one's length, in the array `empty` gives (the cache entry's file); a file with
    uneven batches is put together at the end instead (more memory, the same arrays).
    """

    def __init__(self, names: tuple[str, ...], empty: Callable[[tuple[int, ...]], np.ndarray]) -> None:
        self.names, self.empty = names, empty
        self.x: np.ndarray | None = None
        self.rows = 0
        self.labels: dict[str, np.ndarray] = {}
        self.digests: dict[str, np.ndarray] = {}
        self.uneven: dict[str, np.ndarray] = {}

    def add(self, name: str, raw: np.ndarray, labels: np.ndarray) -> None:
        """Places batch `name` (one of names)."""
        if self.x is None:
            self.rows = len(raw)
            self.x = self.empty((len(self.names) * self.rows, *IMAGE_SHAPE))
        k = self.names.index(name)
        if len(raw) == self.rows:
            images = to_images(raw, self.x[k * self.rows:(k + 1) * self.rows])
            self.uneven.pop(name, None)
        else:
            images = self.uneven[name] = to_images(raw)
        self.labels[name], self.digests[name] = labels, image_digests(images)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The images, labels and image digests of all the batches in names' order (each must have been added)."""
        assert self.x is not None
        y, digests = (np.concatenate([part[n] for n in self.names]) for part in (self.labels, self.digests))
        if not self.uneven:
            return self.x, y, digests
        parts = [self.uneven.get(n, self.x[k * self.rows:(k + 1) * self.rows]) for k, n in enumerate(self.names)]
        return np.concatenate(parts), y, digests


def _decode_pickled(path: Path, draft: cache.Draft) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The cache arrays (with per-image digests) and metadata of the pickled batches, the images written into
    the draft entry's files as they are read."""
    with ThreadPoolExecutor(1) as pool:
        # Hashed beside the reading: hashlib releases the GIL, and the archive is ~170 MB.
        sha256 = pool.submit(file_sha256, path)
        train, test = (_Side(names, lambda shape, side=side: draft.empty(f"x_{side}", shape, np.uint8))
                       for side, names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))))
        has_meta = False
        for name, data in _batch_files(path):
            if name == META_FILE:
                _check_meta(data, path)
                has_meta = True
                continue
            raw, labels = read_batch(data, f"{path}/{name}")
            (test if name == TEST_BATCH else train).add(name, raw, labels)
            del raw  # before the next batch is read
        arrays = {}
        for side, part in (("train", train), ("test", test)):  # _batch_files raised if a batch was missing
            arrays[f"x_{side}"], arrays[f"y_{side}"], arrays[f"x_{side}{DIGESTS}"] = part.arrays()
        rows = {name: len(y) for part in (train, test) for name, y in part.labels.items()}
        digest = sha256.result()
        pixels, check = check_source(path, rows, has_meta, digest)
        return arrays, {"n_skipped": 0, "skipped": [], "source_sha256": digest, "pixels": pixels,
                        "source_check": check, "format": TAR_FORMAT if path.is_file() else FOLDER_FORMAT}


def check_source(path: Path, rows: dict[str, int], has_meta: bool, sha256: str) -> tuple[str, str]:
    """The 'pixels' entry ('canonical' or 'variant: ...') and a line on how the source compares with the
    published one, from each batch's row count, whether batches.meta was there and the file's SHA-256.

    'canonical' needs the batches laid out as published and, for an archive, the published file itself; an
    extracted folder (Keras checked the archive's hash when it downloaded it) can only be checked for its layout:
    no digest of the batch files is published.
    """
    changes = []
    train = [f"{rows[n]} training rows in {n}" for n in TRAIN_BATCHES if rows[n] != ROWS_PER_BATCH]
    if train:
        changes.append(f"{', '.join(train)}, not {len(TRAIN_BATCHES)} x {ROWS_PER_BATCH}")
    if rows[TEST_BATCH] != ROWS_PER_BATCH:
        changes.append(f"{rows[TEST_BATCH]} test rows in {TEST_BATCH}, not {ROWS_PER_BATCH}")
    if not has_meta:
        changes.append(f"no {META_FILE}")
    if path.is_dir():
        check = "extracted folder: no published digest of the batch files to compare; the layout " + \
            ("differs from the published one" if changes else "is the published one")
    else:
        size = path.stat().st_size
        if size == PUBLISHED_SIZE and sha256 == PUBLISHED_SHA256:
            check = f"archive matches the published size ({PUBLISHED_SIZE} bytes) and SHA-256 ({PUBLISHED_SHA256})"
        else:
            check = (f"archive is not the published file: {size} bytes, SHA-256 {sha256} (published: "
                     f"{PUBLISHED_SIZE} bytes, SHA-256 {PUBLISHED_SHA256})")
            if not changes:
                changes.append("batches laid out as published, but the archive is not the published file")
    return ("variant: " + "; ".join(changes) if changes else "canonical"), check


def read_pickled(path: Path) -> ImageData:
    """The official split from the pickled batches in a tar.gz or folder, cached like decoded images (reading
    the tar.gz alone takes seconds: it is one gzip stream)."""
    state = file_state(path) if path.is_file() else DirTree(path).fingerprint()
    arrays, meta, hit = cache.cached_into("cifar10", path, state, {"read": "pickled"},
                                          lambda draft: _decode_pickled(path, draft))
    info = {"source": str(path.resolve()), "cache": hit, "n_skipped": 0, "skipped": [],
            **provenance(of_cached(arrays, CLASS_NAMES, "official"), meta["format"], meta["pixels"]),
            "source_sha256": meta["source_sha256"], "source_check": meta["source_check"]}
    return ImageData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], CLASS_NAMES,
                     "official", info)


def read_image_folders(path: Path) -> ImageData:
    """The official split from train/<class>/ and test/<class>/ image folders (folder or zip), cached."""
    with open_tree(path) as tree:
        def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
            layout = scan(tree, EXPECTED_LAYOUT)
            if not layout.given or set(layout.class_names) != set(CLASS_NAMES):
                raise DatasetError(f"{path}: found "
                                   f"{'train/ and test/ with ' if layout.given else 'no train/ test/; '}classes "
                                   f"{list(layout.class_names)}. Expected {EXPECTED_LAYOUT}")
            return decode_layout(tree, layout, None, CLASS_NAMES)

        arrays, meta, hit = cache.cached("cifar10", path, tree.fingerprint(), {}, build)
    if arrays["x_train"].shape[1:] != IMAGE_SHAPE:
        raise DatasetError(f"{path}: images are {arrays['x_train'].shape[1:]}, CIFAR-10's are {IMAGE_SHAPE}; "
                           "use folder:PATH for other image sets")
    # Image folders are a re-encoding of the pickled batches: lossless (PNG) or lossy (JPEG, quality named).
    info = {"source": str(path.resolve()), "cache": hit, "n_skipped": meta["n_skipped"], "skipped": meta["skipped"],
            **source_info(meta, of_cached(arrays, CLASS_NAMES, "official"))}
    return ImageData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], CLASS_NAMES,
                     "official", info)


def is_pickled(path: Path) -> bool:
    """True for a tar archive (or a file that starts or is named like one, so a damaged one is reported as
    such) or a folder holding the pickled batches."""
    if path.is_file():
        if zipfile.is_zipfile(path):
            return False
        return gzip_ahead.is_gzip(path) or path.name.lower().endswith(TAR_ENDINGS) or tarfile.is_tarfile(path)
    return (path / TRAIN_BATCHES[0]).is_file() or (path / TEST_BATCH).is_file()


def fetch_with_keras() -> None:
    """Downloads and caches the canonical batches through Keras' own loader (imported here: it is heavy)."""
    import keras

    keras.datasets.cifar10.load_data()


@dataclass(frozen=True)
class Cifar10(Fetchable):
    """60,000 32x32 colour images in 10 classes, official 50,000/10,000 split, canonical label order."""

    name: ClassVar[str] = "cifar10"
    description: ClassVar[str] = "CIFAR-10: 60,000 32x32 colour images, 10 classes, official 50k/10k split"

    path: str | None = None  # cifar-10-python.tar.gz, cifar-10-batches-py/, or train/test image folders
    download: bool = True  # fetch through keras.datasets.cifar10 when nothing is on disk and the net is up

    def __post_init__(self) -> None:
        check_path(self.name, self.path)
        check_flag(self.name, "download", self.download)

    def _search(self) -> sources.Search:
        return sources.search(self.path, KNOWN_NAMES, keras_places())

    def _source_url(self) -> str:
        return URL

    def _wanted(self) -> str:
        return f"{BATCHES_DIR}/ or cifar-10-python.tar.gz"

    def _fetched_by(self) -> str:
        return "through keras.datasets.cifar10"

    def _fetch(self, where: sources.Search) -> None:
        try:
            fetch_with_keras()
        except Exception as exc:  # Keras raises plain Exceptions for failed fetches and bad hashes
            raise DatasetUnavailable(f"{self._message(where)} (the download through Keras failed: {exc})") from exc

    def load(self) -> ImageData:
        """Reads the first source found, downloading through Keras first when allowed and needed."""
        path = self.located()
        if path.is_dir() and (path / BATCHES_DIR).is_dir():
            path = path / BATCHES_DIR
        return read_pickled(path) if is_pickled(path) else read_image_folders(path)
