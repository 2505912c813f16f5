"""Class-folder layouts (root/<class>/* or root/train|test/<class>/*), found in a folder or a zip."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.datasets.base import DatasetError
from bench.datasets.images import IMAGE_EXTENSIONS, Decoded, decode_all, is_image_name
from bench.datasets.trees import FileTree, parts

EXPECTED_LAYOUT = ("either <root>/<class>/<images> (one set, split by the harness) or "
                   "<root>/train/<class>/<images> and <root>/test/<class>/<images> (a given split); one "
                   "sub-folder per class, at least two classes")
# How many entries an error lists of what it found.
_FOUND_LISTED = 12


@dataclass(frozen=True)
class ClassLayout:
    """Image files with their class folder names; test is None when the source holds one set to split."""

    root: str  # the folder inside the source that holds the classes (or train/ and test/), '' for the top
    train: tuple[tuple[str, str], ...]  # (file, class name)
    test: tuple[tuple[str, str], ...] | None
    class_names: tuple[str, ...]  # sorted folder names

    @property
    def given(self) -> bool:
        """True when the source has its own train/ and test/ folders."""
        return self.test is not None


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def describe_found(files: Sequence[str], depth: int = 2) -> str:
    """What a source holds, as 'folder/sub/ (N images)' entries, for layout errors; files that are not images
    by their name's ending are counted apart, as ignored."""
    images: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for f in files:
        path_parts = parts(f)
        key = "/".join(path_parts[:min(depth, len(path_parts) - 1)])
        (images if is_image_name(f) else others)[key + "/" if key else "(top level)"] += 1
    keys = sorted(set(images) | set(others))
    shown = [f"{k} ({_count(images[k], 'image')}"
             + (f", {_count(others[k], 'non-image file')} ignored)" if others[k] else ")")
             for k in keys[:_FOUND_LISTED]]
    more = f", ... {len(keys) - _FOUND_LISTED} more" if len(keys) > _FOUND_LISTED else ""
    n_other = sum(others.values())
    if not shown:
        return "no files at all"
    if not images:
        return f"no image files, only {_count(n_other, 'other file')} ({', '.join(shown)}{more})"
    ignored = f"; {_count(n_other, 'non-image file')} ignored in all" if n_other else ""
    return ", ".join(shown) + more + ignored


def _layout_error(source: str, problem: str, files: Sequence[str],
                  expected: str = EXPECTED_LAYOUT) -> DatasetError:
    return DatasetError(f"{source}: {problem}. Expected {expected}. Found: {describe_found(files)}")


def _split_name(part: str) -> str | None:
    low = part.lower()
    return low if low in ("train", "test") else None


def scan(tree: FileTree, expected: str = EXPECTED_LAYOUT) -> ClassLayout:
    """Finds the class folders (and train/test) in a source; wrapper folders at the top are stepped into."""
    source = str(tree.path)
    every = tree.files()
    files = [f for f in every if is_image_name(f)]
    if not files:
        raise _layout_error(source, f"no image files found (image files end in "
                                    f"{', '.join(sorted(IMAGE_EXTENSIONS))})", every, expected)
    split = [parts(f) for f in files]
    depth = 0
    # Step into a single wrapper folder (e.g. cell_images/) while files still sit two levels below it.
    while len({p[depth] for p in split}) == 1 and all(len(p) > depth + 2 for p in split):
        if _split_name(split[0][depth]):
            break
        depth += 1
    root = "/".join(split[0][:depth])
    tops = {p[depth] for p in split}
    sides = {_split_name(t) for t in tops}
    if "train" in sides or "test" in sides:
        if sides != {"train", "test"}:
            raise _layout_error(source, "a train/ or test/ folder needs its partner and nothing beside them",
                                every, expected)
        by_side: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
        for f, p in zip(files, split, strict=True):
            if len(p) < depth + 3:
                raise _layout_error(source, f"{f} sits in {p[depth]}/ itself, not in a class sub-folder",
                                    every, expected)
            by_side[_split_name(p[depth]) or ""].append((f, p[depth + 1]))
        train_classes = sorted({c for _, c in by_side["train"]})
        test_classes = sorted({c for _, c in by_side["test"]})
        if train_classes != test_classes:
            raise _layout_error(source, f"train/ has classes {train_classes} but test/ has {test_classes}; "
                                "both need the same class folders", every, expected)
        layout = ClassLayout(root, tuple(by_side["train"]), tuple(by_side["test"]), tuple(train_classes))
    else:
        pairs = []
        for f, p in zip(files, split, strict=True):
            if len(p) < depth + 2:
                raise _layout_error(source, f"{f} is not inside a class sub-folder", every, expected)
            pairs.append((f, p[depth]))
        layout = ClassLayout(root, tuple(pairs), None, tuple(sorted({c for _, c in pairs})))
    if len(layout.class_names) < 2:
        raise _layout_error(source, f"only one class ({', '.join(layout.class_names)}); a classifier needs "
                                    "at least two class sub-folders", every, expected)
    return layout


@dataclass(frozen=True)
class LabelledImages:
    """Decoded images with labels, their file names, and the files skipped as unreadable."""

    x: np.ndarray
    y: np.ndarray
    files: tuple[str, ...]
    skipped: tuple[str, ...]
    kept: np.ndarray  # positions in the input pairs of the images in x
    converted: dict[str, int]  # conversion ('16-bit to 8-bit') -> how many images it was applied to


def decode_labelled(tree: FileTree, pairs: Sequence[tuple[str, str]], class_names: Sequence[str],
                    size: int | None, description: str) -> LabelledImages:
    """Decodes (file, class) pairs; labels are indices into class_names."""
    index = {c: i for i, c in enumerate(class_names)}
    names = [f for f, _ in pairs]
    labels = np.array([index[c] for _, c in pairs], dtype=np.int64)
    decoded: Decoded = decode_all(names, tree.read, size, description)
    return LabelledImages(x=decoded.x, y=labels[decoded.kept], files=tuple(names[i] for i in decoded.kept),
                          skipped=tuple(decoded.skipped), kept=decoded.kept, converted=decoded.converted)
