"""Decoding image files: the process pool gives what one loop gives; deep (16-bit, float) images are scaled to 8
bits; large ones are decoded in bounded memory or refused; errors name the file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import DatasetError, images
from bench.datasets.folder import ImageFolder
from bench.datasets.trees import open_tree
from tests.datasets.builders import (
    PNG_GREY,
    PNG_GREY_ALPHA,
    PNG_RGB,
    PNG_RGBA,
    class_members,
    corrupt_png,
    png16_bytes,
    png_bytes,
    write_tree,
    write_zip,
)


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


# Known 16-bit samples: the ends, values just either side of a rounding step, and the middle.
SAMPLES_16 = np.array([0, 1, 128, 129, 257, 385, 386, 1000, 32896, 65280, 65534, 65535], dtype=np.uint16)


def _as_8_bits(values: np.ndarray) -> np.ndarray:
    return np.rint(values / 257).astype(np.uint8)


def _grey16(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([SAMPLES_16, rng.integers(0, 65536, 24, dtype=np.uint16)]).reshape(4, 9)


def test_a_16_bit_grey_png_is_scaled_not_clipped() -> None:
    values = _grey16()
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")  # PIL writes 16-bit grey (mode I;16) itself
    for data in (buf.getvalue(), png16_bytes(values, PNG_GREY)):
        with Image.open(io.BytesIO(data)) as img:
            assert img.mode.startswith("I")  # what convert("L") used to clip to 0..255
        image = images.decode(data, None, "deep.png")
        assert image.grey and image.converted == images.CONVERTED_16_BIT
        np.testing.assert_array_equal(image.pixels[..., 0], _as_8_bits(values))


@pytest.mark.parametrize("colour_type", [PNG_RGB, PNG_RGBA, PNG_GREY_ALPHA])
def test_16_bit_colour_and_grey_alpha_pngs_keep_every_bit(colour_type: int) -> None:
    rng = np.random.default_rng(colour_type)
    channels = {PNG_RGB: 3, PNG_RGBA: 4, PNG_GREY_ALPHA: 2}[colour_type]
    values = rng.integers(0, 65536, (5, 7, channels), dtype=np.uint16)
    values[0, :, 0] = SAMPLES_16[:7]
    data = png16_bytes(values, colour_type)
    with Image.open(io.BytesIO(data)) as img:  # PIL alone keeps the high bytes: 65280 -> 255, 1000 -> 3
        truncated = np.asarray(img)[..., 0]
    assert not np.array_equal(truncated, _as_8_bits(values[..., 0]))
    image = images.decode(data, None, "deep.png")
    assert image.converted == images.CONVERTED_16_BIT
    if colour_type == PNG_GREY_ALPHA:
        assert image.grey
        np.testing.assert_array_equal(image.pixels[..., 0], _as_8_bits(values[..., 0]))
    else:
        assert not image.grey
        np.testing.assert_array_equal(image.pixels, _as_8_bits(values[..., :3]))


def test_a_folder_of_16_bit_pngs_says_its_pixels_were_converted(tmp_path: Path, cache_dir: Path) -> None:
    members = {f"{cls}/{i}.png": png16_bytes(_grey16(10 * c + i), PNG_GREY) for c, cls in enumerate("ab")
               for i in range(10)}
    members.update({f"{cls}/rgb{i}.png": png16_bytes(np.stack([_grey16(i)] * 3, -1), PNG_RGB)
                    for cls in "ab" for i in range(2)})
    members["a/plain.png"] = png_bytes((9, 4), 1)  # 8-bit: read as stored
    data = ImageFolder(path=str(write_tree(tmp_path / "deep", members)), test_fraction=0.5).load()
    assert data.info["pixels"] == "converted: 16-bit to 8-bit (24 images); PNG"
    x = np.concatenate([data.x_train, data.x_test])
    assert x.shape[1:] == (4, 9, 3) and int(x.max()) == 255  # 65535 is white, not clipped and not 254
    (entry,) = cache_dir.glob("folder-*")
    meta = json.loads((entry / "meta.json").read_text())["meta"]
    assert meta["converted"] == {images.CONVERTED_16_BIT: 24}
    assert ImageFolder(path=str(tmp_path / "deep"), test_fraction=0.5).load().info["pixels"] == data.info["pixels"]


def _float_tiff(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.float32), "F").save(buf, "TIFF")
    return buf.getvalue()


def test_float_images_within_0_1_or_0_255_are_scaled_and_others_refused() -> None:
    fractions = np.linspace(0, 1, 12).reshape(3, 4)
    image = images.decode(_float_tiff(fractions), None, "f.tif")
    assert image.converted == images.CONVERTED_FLOAT
    np.testing.assert_array_equal(image.pixels[..., 0], np.rint(fractions * 255).astype(np.uint8))
    levels = np.linspace(0, 255, 12).reshape(3, 4)
    np.testing.assert_array_equal(images.decode(_float_tiff(levels), None, "l.tif").pixels[..., 0],
                                  np.rint(levels).astype(np.uint8))
    with pytest.raises(ValueError, match=r"odd.tif is a 32-bit float image with values -1..300"):
        images.decode(_float_tiff(np.linspace(-1, 300, 12).reshape(3, 4)), None, "odd.tif")


def _solid(kind: str, mode: str, side: int) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (side, side), (200, 30, 90))
    (img if mode == "RGB" else img.convert(mode, palette=Image.Palette.ADAPTIVE)).save(buf, kind)
    return buf.getvalue()


# Decodes one image file to 64 px in a fresh process and prints the growth of its peak resident memory (MB).
_PEAK_SCRIPT = """
import sys
from pathlib import Path
from bench.datasets import images
data = Path(sys.argv[1]).read_bytes()
def kb(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # resets VmHWM to the current resident size
before = kb("VmRSS:")
assert images.decode(data, 64, "big").pixels.shape == (64, 64, 3)
print((kb("VmHWM:") - before) / 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize(("kind", "mode", "limit_mb"), [
    # A JPEG is decoded at 1/8 scale by its own decoder: the full image never exists.
    ("JPEG", "RGB", 12),
    # A PNG is inflated whole by PIL (1 byte a pixel for a palette, 36 MB here); the conversion to RGB (4 bytes a
    # pixel as PIL holds it, 144 MB more before) is made strip by strip after shrinking.
    ("PNG", "P", 50),
])
def test_a_large_compressible_image_is_decoded_to_its_target_size_in_bounded_memory(
        tmp_path: Path, kind: str, mode: str, limit_mb: float) -> None:
    side = 6000
    path = tmp_path / f"big.{kind.lower()}"
    path.write_bytes(_solid(kind, mode, side))
    assert path.stat().st_size < 1_000_000  # small on disk
    full_mb = side * side * 3 / 2**20  # the decoded (H, W, 3) array: 103 MB
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    growth = float(done.stdout.split()[-1])
    assert growth < limit_mb < full_mb / 2, f"peak grew by {growth:.0f} MB"


def test_an_image_over_the_pixel_bound_is_refused_before_decoding_with_its_name(tmp_path: Path) -> None:
    side = int(images.MAX_PIXELS ** 0.5) + 1
    members = {f"{cls}/{i}.png": png_bytes(8, i) for cls in "ab" for i in range(5)}
    buf = io.BytesIO()
    Image.new("L", (side, side), 7).save(buf, "PNG")
    members["b/huge.png"] = buf.getvalue()
    root = write_tree(tmp_path / "set", members)
    with pytest.raises(DatasetError, match=rf"b/huge.png is {side}x{side} pixels \(50 megapixels\), over the "
                                           "50-megapixel limit"):
        ImageFolder(path=str(root), size=16).load()


def test_an_undecodable_file_is_named_in_the_error_not_a_buffer(tmp_path: Path) -> None:
    members = {f"{cls}/{i}.png": b"not a png at all" for cls in "ab" for i in range(3)}
    with pytest.raises(DatasetError) as err:
        ImageFolder(path=str(write_tree(tmp_path / "bad", members))).load()
    assert "a/0.png (UnidentifiedImageError: a/0.png is not an image file PIL can read" in str(err.value)
    assert "BytesIO" not in str(err.value)
