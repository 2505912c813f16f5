"""Generated hostile image folders for the property tests: class folders with names in any bytes, and beside the
images FIFOs, links inside and outside the folder, links to /dev/zero, loops, hidden entries, empty and huge
(sparse) files; each plan says what the folder policy must make of it."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from bench.datasets.folder import NOT_AN_IMAGE
from bench.datasets.trees import BROKEN_LINK, HIDDEN, LOOP, NOT_REGULAR, OUTSIDE, shown_name
from tests.datasets.builders import png_bytes

PER_CLASS = 5  # valid images in each class folder
SPARSE_BYTES = 8 * 2**30  # a huge file that takes no disk (a hole)
# What each kind of extra entry counts as: a reason it is left out, an image more, or a file that cannot be read.
EFFECT = {"fifo": NOT_REGULAR, "zero_link": OUTSIDE, "outside_link": OUTSIDE, "hidden_file": HIDDEN,
          "hidden_dir": HIDDEN, "dangling": BROKEN_LINK, "loop": LOOP, "non_image": NOT_AN_IMAGE,
          "inside_link": "image", "empty": "bad", "sparse": "bad"}

# Names in any bytes (mostly not UTF-8), and text a console or a table may trip on: newlines, rich markup,
# quotes, commas, a leading dash, characters from other scripts.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\n\t [],;\"'-\\%"),
                min_size=1, max_size=20).map(lambda t: t.encode("utf-8"))
_NAME = (st.binary(min_size=1, max_size=40) | _TEXT | st.sampled_from([b"[bold]x[/]", b"-rf", b"a,b", b"\xff\xfe"])
         ).filter(lambda b: b"/" not in b and b"\0" not in b and len(b) <= 100)
_CLASS = _NAME.filter(lambda b: not b.startswith(b".") and b.lower() not in (b"train", b"test", b"__macosx"))


@dataclass(frozen=True)
class Plan:
    """A folder to write: class folder names (bytes) and extras (kind, class index, name)."""

    classes: tuple[bytes, ...]
    extras: tuple[tuple[str, int, bytes], ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names the data set must show (sorted, escaped where not UTF-8)."""
        return tuple(sorted(shown_name(os.fsdecode(c)) for c in self.classes))

    @property
    def unreadable(self) -> bool:
        """Whether the folder holds an image file that cannot be read (the load must then fail)."""
        return any(EFFECT[kind] == "bad" for kind, _, _ in self.extras)

    @property
    def n_images(self) -> int:
        """Images the data set must hold."""
        return PER_CLASS * len(self.classes) + sum(EFFECT[k] == "image" for k, _, _ in self.extras)

    @property
    def left_out(self) -> dict[str, int]:
        """How many entries the data set must leave out, by reason."""
        return dict(Counter(EFFECT[k] for k, _, _ in self.extras if EFFECT[k] not in ("image", "bad")))


def _distinct(classes: list[bytes]) -> bool:
    shown = {shown_name(os.fsdecode(c)) for c in classes}
    return len(shown) == len(classes)


plans = st.builds(
    Plan,
    st.lists(_CLASS, min_size=2, max_size=3, unique=True).filter(_distinct).map(tuple),
    st.lists(st.tuples(st.sampled_from(sorted(EFFECT)), st.integers(0, 2), _NAME), max_size=4).map(tuple),
)


def write_plan(plan: Plan, root: Path, outside: Path) -> Path:
    """Writes the plan's folder under root (and a file the outside links lead to under outside)."""
    base = os.fsencode(root)
    outside.mkdir(parents=True, exist_ok=True)
    away = outside / "away.png"
    away.write_bytes(png_bytes(4, 999))
    folders = []
    for c, name in enumerate(plan.classes):
        folder = base + b"/" + name
        os.makedirs(folder)
        for i in range(PER_CLASS):
            with open(folder + f"/{i:03d}.png".encode(), "wb") as fh:
                fh.write(png_bytes(4, 100 * c + i))
        folders.append(folder)
    for n, (kind, where, name) in enumerate(plan.extras):
        folder = folders[where % len(folders)]
        # Numbered first: unique in the folder, and hidden only where the kind says so.
        entry = folder + b"/" + str(n).encode() + b"-" + name[:30]
        image = entry + b".png"
        if kind == "fifo":
            os.mkfifo(image)
        elif kind == "zero_link":
            os.symlink(b"/dev/zero", image)
        elif kind == "outside_link":
            os.symlink(os.fsencode(away), image)
        elif kind == "inside_link":
            os.symlink(folders[0] + b"/000.png", image)
        elif kind == "hidden_file":
            with open(folder + b"/." + str(n).encode() + b".png", "wb") as fh:
                fh.write(png_bytes(4, 7))
        elif kind == "hidden_dir":
            os.makedirs(folder + b"/." + str(n).encode())
            with open(folder + b"/." + str(n).encode() + b"/0.png", "wb") as fh:
                fh.write(png_bytes(4, 8))
        elif kind == "dangling":
            os.symlink(base + b"/nothing-here", image)
        elif kind == "loop":
            os.symlink(base, entry)
        elif kind == "non_image":
            with open(entry + b".txt", "wb") as fh:
                fh.write(b"notes")
        elif kind == "empty":
            open(image, "wb").close()
        elif kind == "sparse":
            with open(image, "wb") as fh:
                fh.truncate(SPARSE_BYTES)
    return root


def listing(folder: Path) -> list[tuple[bytes, str]]:
    """Every entry under folder (links not followed) with its type, to tell that nothing was added or changed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder)):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            kind = "link" if os.path.islink(path) else "dir" if os.path.isdir(path) else "other"
            found.append((os.path.relpath(path, os.fsencode(folder)), kind))
    return sorted(found)
