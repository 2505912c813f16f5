"""Tiny data sets written in the real on-disk formats (CIFAR pickles, NIH zip, image folders) for tests."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from bench.datasets.cifar10 import CLASS_NAMES as CIFAR_CLASSES
from bench.datasets.cifar10 import TEST_BATCH, TRAIN_BATCHES

CIFAR_PER_BATCH = 10  # one image per class in every batch


def png_bytes(side: int | tuple[int, int], seed: int, mode: str = "RGB", fmt: str = "PNG",
              quality: int | None = None) -> bytes:
    """A random image encoded as PNG (or fmt, at a JPEG quality if given), side x side or (width, height)."""
    w, h = (side, side) if isinstance(side, int) else side
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **({} if quality is None else {"quality": quality}))
    return buf.getvalue()


def cifar_image_members(train: int = 3, test: int = 2, fmt: str = "JPEG", quality: int | None = 75,
                        seed: int = 0) -> dict[str, bytes]:
    """CIFAR-10 as image folders, like the shared cifar10-jpeg.zip: {train,test}/<class>/NNNN.jpg (or .png)."""
    ext = "jpg" if fmt == "JPEG" else fmt.lower()
    return {f"{side}/{cls}/{i:04d}.{ext}": png_bytes(32, seed + s * 10_000 + label * 100 + i, fmt=fmt, quality=quality)
            for s, (side, n) in enumerate((("train", train), ("test", test)))
            for label, cls in enumerate(CIFAR_CLASSES) for i in range(n)}


def corrupt_png(seed: int = 0) -> bytes:
    """A PNG cut off halfway: the header parses, the pixel data does not."""
    data = png_bytes(24, seed)
    return data[: len(data) // 2]


class _Python2Pickler(pickle._Pickler):  # type: ignore[misc,name-defined]
    """Writes bytes as Python 2's str (BINSTRING), as the canonical CIFAR-10 batches were pickled; Python 3's
    protocol 2 writes them as a call of _codecs.encode on a text string, which unpickles by another path."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n))
        self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def python2_pickle(obj: object) -> bytes:
    """obj pickled at protocol 2 with its bytes as Python 2 strs: the canonical batches' own format."""
    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_batches(seed: int = 0) -> dict[str, bytes]:
    """Pickled batches laid out as the real ones: {b'data': (N, 3072) uint8 R,G,B planes, b'labels': [...]}."""
    rng = np.random.default_rng(seed)
    files = {}
    for i, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        data = rng.integers(0, 256, (CIFAR_PER_BATCH, 3072), dtype=np.uint8)
        labels = [(j + i) % 10 for j in range(CIFAR_PER_BATCH)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{j}.png".encode() for j in range(CIFAR_PER_BATCH)]}
        files[name] = pickle.dumps(batch, protocol=2)
    files["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in CIFAR_CLASSES],
                                          b"num_cases_per_batch": CIFAR_PER_BATCH, b"num_vis": 3072}, protocol=2)
    return files


def write_cifar_folder(root: Path, files: dict[str, bytes] | None = None) -> Path:
    """An extracted cifar-10-batches-py/ folder under root."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in (files or cifar_batches()).items():
        (folder / name).write_bytes(data)
    return folder


def write_cifar_tar(path: Path, files: dict[str, bytes] | None = None) -> Path:
    """A cifar-10-python.tar.gz holding cifar-10-batches-py/<batches>, as the real archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (files or cifar_batches()).items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip of the given members (name -> bytes), stored like the shared data zips."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def write_tree(root: Path, members: dict[str, bytes]) -> Path:
    """The same members as files under root."""
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def malaria_members(codes_per_class: int = 6, cells_per_code: int = 10, corrupt: int = 1,
                    shared_codes: int = 2) -> dict[str, bytes]:
    """NIH's layout: cell_images/<class>/C<n>P<m>ThinF_IMG_..._cell_<k>.png of varying sizes, Thumbs.db, bad PNGs.

    The first `shared_codes` codes hold cells of both classes, as some slides in the real set do.
    """
    members: dict[str, bytes] = {}
    seed = 0
    for c, cls in enumerate(("Parasitized", "Uninfected")):
        codes = list(range(codes_per_class)) if c == 0 else \
            [*range(shared_codes), *range(100, 100 + codes_per_class - shared_codes)]
        for code in codes:
            for k in range(cells_per_code):
                seed += 1
                side = 12 + (seed * 7) % 30  # cells vary in size, as the real ones do
                members[f"cell_images/{cls}/C{code}P{code + 7}ThinF_IMG_20150918_1441{k:02d}_cell_{k}.png"] = \
                    png_bytes((side, side + seed % 5), seed)
        members[f"cell_images/{cls}/Thumbs.db"] = b"\xd0\xcf\x11\xe0 not an image"
    for k in range(corrupt):
        members[f"cell_images/Parasitized/C0P7ThinF_IMG_20150918_144199_cell_9{k}.png"] = corrupt_png(k)
    return members


def class_members(classes: tuple[str, ...] = ("cat", "dog", "fish"), per_class: int = 10, side: int = 8,
                  prefix: str = "", mode: str = "RGB") -> dict[str, bytes]:
    """<prefix><class>/<i>.png images of one size."""
    return {f"{prefix}{cls}/{i:03d}.png": png_bytes(side, c * 1000 + i, mode)
            for c, cls in enumerate(classes) for i in range(per_class)}


def compressible_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """n CIFAR rows (3072 bytes: R, G, B planes) of blocky images with a little noise: at gzip's default level
    they compress to 0.87 and inflate at the speed of real photographs (CIFAR-10's pixels: 0.90 and the same
    speed, measured on the JPEG zip's images), where uniform noise is stored uncompressed and copies 3x faster."""
    blocks = rng.integers(0, 256, (n, 3, 4, 4)).astype(np.float32).repeat(8, axis=2).repeat(8, axis=3)
    return np.clip(blocks + rng.normal(0, 2, blocks.shape), 0, 255).astype(np.uint8).reshape(n, 3072)


def generated_tar(path: Path, per_class_train: int, per_class_test: int) -> Path:
    """cifar-10-python.tar.gz laid out, pickled and compressed as the real one (five train batches, one test;
    Python 2 pickles; gzip's default level, the real archive's 163 MB for 184 MB of batches)."""
    rng = np.random.default_rng(0)
    n_train = per_class_train * 10 // len(TRAIN_BATCHES)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, n in [*((b, n_train) for b in TRAIN_BATCHES), (TEST_BATCH, per_class_test * 10)]:
            # Pickled as the real batches were, by Python 2 (the pixels as one str); see builders.
            data = python2_pickle({b"batch_label": name.encode(), b"labels": [i % 10 for i in range(n)],
                                   b"data": compressible_rows(rng, n)})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        meta = python2_pickle({b"label_names": [c.encode() for c in CIFAR_CLASSES]})
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


# PNG colour types (the PNG specification, IHDR): grey, truecolour, grey with alpha, truecolour with alpha.
PNG_GREY, PNG_RGB, PNG_GREY_ALPHA, PNG_RGBA = 0, 2, 4, 6


def png16_bytes(values: np.ndarray, colour_type: int) -> bytes:
    """A real 16-bit PNG of `values` (uint16, (H, W) for grey, else (H, W, channels)), written chunk by chunk:
    PIL writes 16-bit grey but not 16-bit colour. Rows use filter 1 (Sub) on odd rows, so the decoder must
    unfilter with the right bytes per pixel."""
    h, w = values.shape[:2]
    big = np.ascontiguousarray(values, dtype=">u2").reshape(h, -1).view(np.uint8).reshape(h, -1)
    bpp = big.shape[1] // w
    rows = []
    for r in range(h):
        line = big[r].astype(np.int16)
        if r % 2:
            prior = np.concatenate([np.zeros(bpp, np.int16), line[:-bpp]])
            rows.append(b"\x01" + ((line - prior) % 256).astype(np.uint8).tobytes())
        else:
            rows.append(b"\x00" + big[r].tobytes())
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + _png_chunk(b"IEND", b""))
