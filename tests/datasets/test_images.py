"""Decoding many files: the process pool gives exactly what one loop in this process gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.datasets import images
from bench.datasets.trees import open_tree
from tests.datasets.builders import class_members, corrupt_png, png_bytes, write_tree, write_zip


@pytest.mark.parametrize("container", ["zip", "folder"])
def test_the_pool_decodes_what_one_loop_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                container: str) -> None:
    members = class_members(per_class=300, side=8)
    members["cat/bad.png"] = corrupt_png()  # a bad file inside one chunk: that chunk comes back unstacked
    path = write_zip(tmp_path / "s.zip", members) if container == "zip" else write_tree(tmp_path / "s", members)
    with open_tree(path) as tree:
        names = [n for n in tree.files() if images.is_image_name(n)]
        one_loop = images.decode_all(names, tree.read, None)
        monkeypatch.setattr(images, "MIN_POOL_IMAGES", 0)
        monkeypatch.setattr(images, "WORKERS", 2)
        monkeypatch.setattr(images, "CHUNK", 16)  # many chunks, so both workers take several
        pooled = images.decode_all(names, tree.read, None)
    assert pooled.skipped == one_loop.skipped == ["cat/bad.png"]
    np.testing.assert_array_equal(pooled.kept, one_loop.kept)
    assert pooled.x.dtype == np.uint8 and pooled.x.tobytes() == one_loop.x.tobytes()
    assert len(pooled.x) == len(names) - 1


def test_a_size_mismatch_across_chunks_names_the_file_and_the_fix(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    members = {f"a/{i:03d}.png": png_bytes(8, i) for i in range(40)}
    members.update({f"b/{i:03d}.png": png_bytes(9, i) for i in range(40)})
    monkeypatch.setattr(images, "CHUNK", 16)
    with open_tree(write_zip(tmp_path / "s.zip", members)) as tree, \
            pytest.raises(images.DatasetError, match=r"b/000.png is 9x9 but earlier ones are 8x8.*size=N"):
        images.decode_all(sorted(members), tree.read, None)


def test_grey_images_keep_one_channel_after_compaction() -> None:
    names = [f"{i}.png" for i in range(150)]  # one bad file in 150 is under the 1% allowed

    def read(name: str) -> bytes:
        return corrupt_png() if name == "3.png" else png_bytes(6, int(name[:-4]), mode="L")

    decoded = images.decode_all(names, read, None)
    assert decoded.grey and decoded.x.shape == (149, 6, 6, 1) and decoded.x.flags.c_contiguous
    np.testing.assert_array_equal(decoded.kept, [i for i in range(150) if i != 3])
    for row, i in ((2, 2), (3, 4), (148, 149)):  # rows after the bad file moved up by one
        assert decoded.x[row].tobytes() == images.decode(png_bytes(6, i, mode="L"), None)[0][..., :1].tobytes()
