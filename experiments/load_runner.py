"""One load, measured in a fresh process: `python -m experiments.load_runner KIND FORMAT PATH` (from the repository
root; tests/datasets/test_load_benchmarks.py runs it once per load it compares).

KIND is 'plain' (the straightforward one-process loop a user would write: a PIL loop over the zip, a pickle loop
over the tar.gz) or 'project' (bench's load through load_data, cold or warm depending on BENCH_CACHE_DIR).
Prints one JSON line: the load's seconds, the process's resident memory before it and at its peak (VmHWM, reset
after the imports),
the arrays' size, and a digest of the arrays (taken after the peak is read) so runs can be checked to agree.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import resource
import sys
import tarfile
import time
import zipfile

import numpy as np
from PIL import Image

from bench.datasets.cifar10 import CLASS_NAMES, TEST_BATCH, TRAIN_BATCHES
from bench.datasets.images import IMAGE_EXTENSIONS, RESAMPLE
from bench.datasets.malaria import DEFAULT_SIZE

MIB = 1024  # ru_maxrss is in KiB on Linux


def reset_peak() -> bool:
    """Resets this process's peak resident memory to its current one (Linux 4.0+: the imports' own peak,
    scikit-learn's over 200 MB, would otherwise hide any load smaller than that); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / MIB


def rss_peak_mb() -> float:
    """This process's peak resident memory (since the reset), in MiB."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / MIB
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


def plain_zip(path: str, size: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A PIL loop over a zip of <side>/<class>/<image> (or <root>/<class>/<image>, all as train), lists stacked."""
    xs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    ys: dict[str, list[int]] = {"train": [], "test": []}
    with zipfile.ZipFile(path) as z:
        names = sorted(i.filename for i in z.infolist()
                       if not i.is_dir() and i.filename[i.filename.rfind("."):].lower() in IMAGE_EXTENSIONS)
        classes = sorted({n.split("/")[-2] for n in names})
        for name in names:
            side = "test" if name.startswith("test/") else "train"
            with Image.open(io.BytesIO(z.read(name))) as img:
                img = img.convert("RGB")
                if size is not None:
                    img = img.resize((size, size), RESAMPLE)
                xs[side].append(np.asarray(img))
            cls = name.split("/")[-2]
            ys[side].append(CLASS_NAMES.index(cls) if cls in CLASS_NAMES else classes.index(cls))
    test = (np.stack(xs["test"]), np.array(ys["test"])) if xs["test"] else (np.empty((0,)), np.empty((0,)))
    return np.stack(xs["train"]), np.array(ys["train"]), *test


def plain_tar(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A pickle loop over cifar-10-python.tar.gz, batches concatenated."""
    batches = {}
    with tarfile.open(path) as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if base in (*TRAIN_BATCHES, TEST_BATCH):
                batch = pickle.load(tar.extractfile(member), encoding="bytes")  # type: ignore[arg-type]
                x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                batches[base] = (x, np.asarray(batch[b"labels"]))
    x_train = np.concatenate([batches[n][0] for n in TRAIN_BATCHES])
    y_train = np.concatenate([batches[n][1] for n in TRAIN_BATCHES])
    return x_train, y_train, *batches[TEST_BATCH]


def project(dataset: str, path: str) -> tuple[tuple[np.ndarray, ...], dict[str, object]]:
    """bench's load, as the harness calls it."""
    from bench.datasets import load_data

    options = {"path": path} if dataset == "folder" else {"path": path, "download": False}
    data = load_data(dataset, options)
    return (data.x_train, data.y_train, data.x_test, data.y_test), dict(data.info)


def main(kind: str, fmt: str, path: str) -> None:
    """Runs one load and prints its figures as JSON."""
    import bench.datasets.registry  # noqa: F401 - imported before the clock starts, as the harness has it

    dataset = {"cifar10-zip": "cifar10", "cifar10-tar": "cifar10", "malaria-zip": "malaria"}[fmt]
    if not reset_peak():
        raise SystemExit("needs Linux's /proc/self/clear_refs to measure a load's own peak memory")
    base = rss_mb()
    start = time.perf_counter()
    info: dict[str, object] = {}
    if kind == "plain":
        arrays = plain_tar(path) if fmt == "cifar10-tar" else \
            plain_zip(path, DEFAULT_SIZE if dataset == "malaria" else None)
    else:
        arrays, info = project(dataset, path)
    seconds = time.perf_counter() - start
    peak = rss_peak_mb()
    array_mb = (arrays[0].nbytes + arrays[2].nbytes) / 2**20
    # Reading every pixel once after the load: free for arrays in memory, a pass over the file for mapped ones.
    start = time.perf_counter()
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    read_s = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "base_mb": base, "peak_mb": peak, "array_mb": array_mb,
                      "read_all_s": read_s, "digest": digest.hexdigest(), "n": len(arrays[0]) + len(arrays[2]),
                      "cache": info.get("cache", ""), "fingerprint": info.get("fingerprint", "")}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
