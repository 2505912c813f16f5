"""NIH's malaria cell images (Parasitized / Uninfected), resized to a square, split by cell or by patient."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from bench.datasets import cache, sources
from bench.datasets.base import DatasetError, ImageData, OptionError
from bench.datasets.checks import check_choice, check_flag, check_fraction, check_path, check_seed, check_size
from bench.datasets.fetchable import Fetchable
from bench.datasets.fingerprint import of_cached, with_digests
from bench.datasets.folder import source_info, source_meta, split_stratified
from bench.datasets.images import MAX_SKIPPED_LISTED
from bench.datasets.layouts import ClassLayout, decode_labelled, scan
from bench.datasets.trees import FileTree, open_tree

CLASS_NAMES = ("Parasitized", "Uninfected")  # sorted, as the folder names
URL = "https://data.lhncbc.nlm.nih.gov/public/Malaria/cell_images.zip"
ZIP_NAME = "cell_images.zip"
# Names looked for inside BENCH_DATA_DIR: NIH's zip, its extracted folder, the 4,073-cell subset.
KNOWN_NAMES = (ZIP_NAME, "cell_images", "malaria-cells-subset.zip")
EXPECTED_LAYOUT = "NIH's layout cell_images/Parasitized/*.png, cell_images/Uninfected/*.png (folder or zip)"
DEFAULT_SIZE = 64  # px a side, as the 2019 baseline resized the cells
SPLITS = ("cell", "patient")
# The slide/patient code that starts each NIH file name: C100 in C100P61ThinF_IMG_20150918_144104_cell_1.png.
PATIENT_CODE = re.compile(r"^(C\d+)")
# NIH's cells are PNGs (lossless): decoded from PNG, the pixels are the originals (before resizing to `size`).
CANONICAL_FORMATS = ("PNG",)


def download_dir() -> Path:
    """Where a download of NIH's zip is kept: <cache dir>/downloads."""
    return cache.cache_dir() / "downloads"


def patient_code(file: str) -> str:
    """The C<n> code at the start of a file's base name; an error when the name has none."""
    base = PurePosixPath(file).name
    m = PATIENT_CODE.match(base)
    if m is None:
        raise DatasetError(f"malaria: {base} does not start with a patient code like C100; the patient split "
                           "needs NIH's original file names (or use split=cell)")
    return m.group(1)


def _code_or_empty(file: str) -> str:
    m = PATIENT_CODE.match(PurePosixPath(file).name)
    return m.group(1) if m else ""


def split_by_patient(y: np.ndarray, codes: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, each patient code on one side only, stratified as far as groups allow."""
    n_codes = len(np.unique(codes))
    n_splits = max(2, round(1 / test_fraction))
    if n_codes < n_splits:
        raise DatasetError(f"malaria: only {n_codes} patient codes, too few for a patient split with "
                           f"test_fraction={test_fraction}; use split=cell or a larger test_fraction")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    # Whole patients make fold sizes uneven; the test side is the fold closest to the asked-for share.
    tr, te = min(folds.split(np.zeros(len(y)), y, groups=codes),
                 key=lambda f: abs(len(f[1]) / len(y) - test_fraction))
    return np.sort(tr), np.sort(te)


def verify_download(path: Path) -> None:
    """A downloaded NIH zip must be a complete zip holding both class folders."""
    sources.verify_zip(path)
    with open_tree(path) as tree:
        check_layout(scan(tree, EXPECTED_LAYOUT), tree)


def check_layout(layout: ClassLayout, tree: FileTree) -> None:
    """Raises unless the classes are exactly Parasitized and Uninfected in one set."""
    if layout.given or layout.class_names != CLASS_NAMES:
        found = f"train/ and test/ folders with {list(layout.class_names)}" if layout.given else \
            f"class folders {list(layout.class_names)}"
        raise DatasetError(f"malaria: {tree.path} holds {found}. Expected {EXPECTED_LAYOUT}")


@dataclass(frozen=True)
class Malaria(Fetchable):
    """27,558 thin-blood-smear cell images (or a subset), two classes, cell or patient split."""

    name: ClassVar[str] = "malaria"
    description: ClassVar[str] = "NIH malaria cells: Parasitized vs Uninfected; cell or patient split"

    path: str | None = None  # explicit cell_images.zip or extracted cell_images/ folder
    size: int = DEFAULT_SIZE  # square side the cells are resized to, in px (they range ~46-394 px)
    split: str = "cell"  # 'cell': stratified random cells (2019 protocol, leaks patients); 'patient': grouped
    test_fraction: float = 0.2  # share of cells (or of patient folds) held out for testing
    split_seed: int = 0  # seed of the split, fixed so every run sees the same test set
    download: bool = True  # fetch NIH's zip (353 MB) when nothing is on disk and the network is up

    def __post_init__(self) -> None:
        check_path(self.name, self.path)
        if self.size is None:
            raise OptionError("malaria: option size=None is not allowed; the cells vary in size, so size must be "
                              "a number of pixels (e.g. size=64)")
        check_size(self.name, self.size, required=True)
        check_choice(self.name, "split", self.split, SPLITS)
        check_fraction(self.name, self.test_fraction)
        check_seed(self.name, self.split_seed)
        check_flag(self.name, "download", self.download)

    def _search(self) -> sources.Search:
        return sources.search(self.path, KNOWN_NAMES, (download_dir() / ZIP_NAME,))

    def _source_url(self) -> str:
        return URL

    def _wanted(self) -> str:
        return f"{ZIP_NAME} or cell_images/"

    def _fetch(self, where: sources.Search) -> None:
        sources.download(URL, download_dir() / ZIP_NAME, verify_download)

    def load(self) -> ImageData:
        """Decodes and resizes the cells (or reads them from the cache), then splits them."""
        source = self.located()
        with open_tree(source) as tree:
            arrays, meta, hit = cache.cached(self.name, source, tree.fingerprint(), {"size": self.size},
                                             lambda: self._decode(tree))
        x, y, files = arrays["x"], arrays["y"], arrays["files"]
        # The cell split does not need the codes, but reports how many patients it leaks across the sides.
        codes = np.array([patient_code(f) if self.split == "patient" else _code_or_empty(f) for f in files])
        if self.split == "patient":
            tr, te = split_by_patient(y, codes, self.test_fraction, self.split_seed)
        else:
            tr, te = split_stratified(y, self.test_fraction, self.split_seed, self.name)
        info: dict[str, Any] = {
            "source": str(source.resolve()), "cache": hit, "size": self.size,
            "n_skipped": meta["n_skipped"], "skipped": meta["skipped"],
            "patients_train": len(set(codes[tr]) - {""}), "patients_test": len(set(codes[te]) - {""}),
            "patients_shared": len((set(codes[tr]) & set(codes[te])) - {""}),
            **source_info(meta, of_cached(arrays, CLASS_NAMES, self.split, tr, te), CANONICAL_FORMATS),
        }
        return ImageData(cache.take(x, tr), y[tr], cache.take(x, te), y[te], CLASS_NAMES, self.split, info)

    def _decode(self, tree: FileTree) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        layout = scan(tree, EXPECTED_LAYOUT)
        check_layout(layout, tree)
        what = f"decoding cells to {self.size}px"
        cells = decode_labelled(tree, layout.train, CLASS_NAMES, self.size, what)
        arrays = {"x": cells.x, "y": cells.y, "files": np.array([PurePosixPath(f).name for f in cells.files])}
        return with_digests(arrays, ["x"]), {"n_skipped": len(cells.skipped),
                                             "skipped": list(cells.skipped[:MAX_SKIPPED_LISTED]),
                                             "converted": cells.converted,
                                             **source_meta(tree, [f for f, _ in layout.train])}
