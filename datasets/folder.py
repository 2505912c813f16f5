"""Your own data: a folder or zip of class sub-folders of images, with or without train/ and test/."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.model_selection import train_test_split

from bench.datasets import cache
from bench.datasets.base import Availability, Dataset, DatasetError, DatasetUnavailable, ImageData, OptionError
from bench.datasets.checks import check_fraction, check_path, check_seed, check_size
from bench.datasets.encodings import Encoding, detect
from bench.datasets.fingerprint import file_sha256, of_cached, provenance, with_digests
from bench.datasets.images import MAX_SKIPPED_LISTED, is_image_name
from bench.datasets.layouts import ClassLayout, decode_labelled, scan
from bench.datasets.trees import FileTree, open_tree

# Why a file that is there is no image of the data set (Thumbs.db, notes.txt).
NOT_AN_IMAGE = "not an image file by its name"


def stratified_split_name(test_fraction: float) -> str:
    """The protocol name of a seeded stratified split, e.g. 'stratified-20%'."""
    return f"stratified-{round(test_fraction * 100)}%"


def source_meta(tree: FileTree, files: list[str]) -> dict[str, Any]:
    """Cache metadata on what the images were read from: a sample's encoding, zip or folder, the file's sha256."""
    return {"encoding": detect(files, tree.read).to_meta(), "container": tree.container,
            "source_sha256": file_sha256(tree.path)}


def source_info(meta: dict[str, Any], fingerprint: str, canonical: tuple[str, ...] = ()) -> dict[str, Any]:
    """The info entries fingerprint, format and pixels (and source_sha256 and decoder) from an entry's metadata.

    canonical: the formats the data set's originals come in (lossless), reported as 'canonical' pixels.
    """
    encoding = Encoding.from_meta(meta["encoding"])
    pixels = encoding.pixels(canonical, meta.get("converted"))
    return {**provenance(fingerprint, encoding.describe_format(meta["container"]), pixels),
            "source_sha256": meta["source_sha256"], "decoder": meta.get("decoder", "")}


def left_out_info(tree: FileTree) -> dict[str, Any]:
    """The info entries on what the source holds that is not in the data set, and why: n_left_out, left_out
    (reason -> how many) and left_out_listed (the first few, 'entry (reason)')."""
    entries = [*tree.left_out(), *((f, NOT_AN_IMAGE) for f in tree.files() if not is_image_name(f))]
    return {"n_left_out": len(entries), "left_out": dict(Counter(why for _, why in entries)),
            "left_out_listed": [f"{rel} ({why})" for rel, why in entries[:MAX_SKIPPED_LISTED]]}


def describe_left_out(info: Mapping[str, Any]) -> str:
    """One line on what a folder's data set left out and why ('' for nothing), for the run's log."""
    counts = info.get("left_out") or {}
    if not info.get("n_left_out"):
        return ""
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    listed = "; ".join(info.get("left_out_listed") or [])
    return f"{info['n_left_out']} entries of the data folder left out ({why}): {listed}"


def split_stratified(y: np.ndarray, test_fraction: float, seed: int,
                     dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices of a seeded split stratified by label."""
    try:
        tr, te = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed)
    except ValueError as exc:
        raise DatasetError(f"{dataset}: cannot split {len(y)} images stratified with "
                           f"test_fraction={test_fraction} ({exc}); add images to the small classes or "
                           "change test_fraction") from exc
    return np.sort(tr), np.sort(te)


@dataclass(frozen=True)
class ImageFolder(Dataset):
    """Class names from sub-folder names (sorted); a given train/test split is kept, else one is drawn."""

    name: ClassVar[str] = "folder"
    description: ClassVar[str] = "your own images (folder:PATH): class sub-folders, train/ test/ optional"

    path: str | None = None  # the folder or .zip holding the class sub-folders (required)
    size: int | None = None  # resize all images to size x size px; None keeps native sizes (must be uniform)
    test_fraction: float = 0.2  # share held out for testing when the source has no train/ and test/ folders
    split_seed: int = 0  # seed of that split, fixed so every run sees the same test set

    def __post_init__(self) -> None:
        if not self.path:
            raise OptionError("folder: the path option is required; use folder:PATH with a folder or .zip "
                              "of class sub-folders")
        check_path(self.name, self.path, required=True)
        check_size(self.name, self.size)
        check_fraction(self.name, self.test_fraction)
        check_seed(self.name, self.split_seed)

    def availability(self) -> Availability:
        """Available when the path exists (its layout is checked on load)."""
        p = Path(str(self.path)).expanduser()
        if p.exists():
            return Availability(ok=True)
        return Availability(ok=False, reason=f"folder: {p} does not exist; give an existing folder or .zip "
                                             "of class sub-folders as folder:PATH")

    def load(self) -> ImageData:
        """Decodes (or reads from the cache) and splits the images."""
        status = self.availability()
        if not status.ok:
            raise DatasetUnavailable(status.reason)
        source = Path(str(self.path)).expanduser()
        with open_tree(source) as tree:
            arrays, meta, hit = cache.cached(self.name, source, tree.fingerprint(), {"size": self.size},
                                             lambda: decode_layout(tree, scan(tree), self.size))
            # A folder's is taken now (what it holds beside its files may change without changing the key); a
            # zip's was stored with the entry, its key being the archive's bytes (its directory takes seconds).
            left = left_out_info(tree) if tree.container == "folder" else meta.get("left_out_info", {})
        class_names = tuple(meta["class_names"])
        info: dict[str, Any] = {"source": str(source.resolve()), "cache": hit, "n_skipped": meta["n_skipped"],
                                "skipped": meta["skipped"], **left}
        if "x" in arrays:
            x, y = arrays["x"], arrays["y"]
            tr, te = split_stratified(y, self.test_fraction, self.split_seed, self.name)
            split = stratified_split_name(self.test_fraction)
            info.update(source_info(meta, of_cached(arrays, class_names, split, tr, te)))
            return ImageData(cache.take(x, tr), y[tr], cache.take(x, te), y[te], class_names, split, info)
        info.update(source_info(meta, of_cached(arrays, class_names, "given")))
        return ImageData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                         class_names, "given", info)


def decode_layout(tree: Any, layout: ClassLayout, size: int | None,
                  class_names: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Decodes a class layout to cache arrays ('x', 'y' for one set; 'x_train' ... for a given split), with
    each image array's per-image digests, and metadata naming the classes, skipped files and the source."""
    names = class_names or layout.class_names
    if layout.test is None:
        one = decode_labelled(tree, layout.train, names, size, "decoding images")
        arrays = with_digests({"x": one.x, "y": one.y}, ["x"])
        skipped, converted = list(one.skipped), one.converted
        files = [f for f, _ in layout.train]
    else:
        # One decode of both sides (one pool, one output array), cut where the test files start.
        both = decode_labelled(tree, (*layout.train, *layout.test), names, size, "decoding train and test images")
        cut = int(np.searchsorted(both.kept, len(layout.train)))
        arrays = with_digests({"x_train": both.x[:cut], "y_train": both.y[:cut], "x_test": both.x[cut:],
                               "y_test": both.y[cut:]}, ["x_train", "x_test"])
        skipped, converted = list(both.skipped), both.converted
        files = [f for f, _ in (*layout.train, *layout.test)]
    meta = {"class_names": list(names), "n_skipped": len(skipped), "skipped": skipped[:MAX_SKIPPED_LISTED],
            "converted": converted, "left_out_info": left_out_info(tree), **source_meta(tree, files)}
    return arrays, meta
