"""Loads side by side, each in a fresh process: the plain loop, bench's cold load (decode and cache) and its warm one.

Run with: python -m pytest tests/datasets/test_load_benchmarks.py --benchmark-only -m '' -s
Each source runs the plain loop once, the cold load once and the warm load WARM_ROUNDS times, in one session, and
reports seconds, peak resident memory (ru_maxrss of its own process, so peaks never mix), its growth over the
process's memory before the load, the arrays' size, and the ratios to the plain loop. Generated sources in the
real formats always run (small ones, and a canonical tar.gz of the real size); the real files in ../shared/data (or
BENCH_SHARED_DATA) run when present. `-k generated` runs only the generated ones.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA
from tests.datasets.builders import cifar_image_members, generated_tar, write_zip

# Real sources looked for in SHARED_DATA: (format, file name).
REAL = {"cifar10-zip-real": ("cifar10-zip", "cifar10-jpeg.zip"),
        "cifar10-tar-real": ("cifar10-tar", "cifar-10-python.tar.gz"),
        "malaria-zip-real": ("malaria-zip", "malaria-cells-subset.zip")}
# Generated sources: 600 + 100 images per class, 7,000 in all, above images.MIN_POOL_IMAGES so the cold load
# decodes in its process pool as on the real set, and small enough to build in a few seconds.
GENERATED_TRAIN, GENERATED_TEST = 600, 100
WARM_ROUNDS = 3  # warm loads take milliseconds; the mean of a few steadies them
RUN_TIMEOUT_S = 900  # one load of the real CIFAR-10 on a loaded 2-core machine takes well under a minute

pytestmark = pytest.mark.slow


# Generated sources: name -> (format, how to write it under a folder).
GENERATED: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "cifar10-zip-generated": ("cifar10-zip", lambda root: write_zip(root / "cifar10-jpeg.zip", cifar_image_members(
        GENERATED_TRAIN, GENERATED_TEST, fmt="JPEG", quality=75))),
    "cifar10-tar-generated": ("cifar10-tar", lambda root: generated_tar(root / "cifar-10-python.tar.gz",
                                                                        GENERATED_TRAIN, GENERATED_TEST)),
    # The canonical archive's real size (50,000 + 10,000 images), since the real one is not in ../shared/data.
    "cifar10-tar-generated-full": ("cifar10-tar", lambda root: generated_tar(root / "cifar-10-python.tar.gz",
                                                                             5000, 1000)),
}


def source(name: str, root: Path) -> tuple[str, Path]:
    """The format and path of a source, generated under root or found in SHARED_DATA; skips when absent."""
    if name in GENERATED:
        fmt, write = GENERATED[name]
        return fmt, write(root)
    fmt, file = REAL[name]
    if not (SHARED_DATA / file).is_file():
        pytest.skip(f"{SHARED_DATA / file} absent (set BENCH_SHARED_DATA to the folder holding it)")
    return fmt, SHARED_DATA / file


def measure(kind: str, fmt: str, path: Path, cache_dir: Path) -> dict[str, float | str]:
    """One load in a fresh process (experiments/load_runner.py) and its figures."""
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "experiments.load_runner", kind, fmt, str(path)], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(name: str, rows: dict[str, dict[str, float | str]]) -> str:
    """The rows as a Markdown table with ratios to the plain loop."""
    plain = rows["plain"]
    buf = io.StringIO()
    buf.write(f"\n{name} ({int(plain['n'])} images, arrays {plain['array_mb']:.1f} MB)\n")
    buf.write("| load | seconds | x plain | peak RSS MB | x plain | growth MB | growth / arrays | read all s |\n")
    buf.write("|---|---|---|---|---|---|---|---|\n")
    for kind, r in rows.items():
        growth = r["peak_mb"] - r["base_mb"]  # type: ignore[operator]
        buf.write(f"| {kind} | {r['seconds']:.2f} | {r['seconds'] / plain['seconds']:.2f} | "  # type: ignore[operator]
                  f"{r['peak_mb']:.0f} | {r['peak_mb'] / plain['peak_mb']:.2f} | {growth:.0f} | "  # type: ignore[operator]
                  f"{growth / r['array_mb']:.2f} | {r['read_all_s']:.2f} |\n")  # type: ignore[operator]
    return buf.getvalue()


@pytest.mark.parametrize("name", [*GENERATED, *REAL])
def test_load_side_by_side(benchmark, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fmt, path = source(name, tmp_path / "source")
    cache_dir = tmp_path / "cache"
    rows: dict[str, dict[str, float | str]] = {"plain": measure("plain", fmt, path, cache_dir)}
    rows["cold"] = measure("project", fmt, path, cache_dir)
    warm = [measure("project", fmt, path, cache_dir) for _ in range(WARM_ROUNDS)]
    rows["warm"] = {**warm[0], **{k: float(np.mean([w[k] for w in warm]))  # type: ignore[misc]
                                  for k in ("seconds", "peak_mb", "base_mb", "read_all_s")}}
    # pytest-benchmark's own timing: the warm load's process, start to end (interpreter and imports included).
    benchmark.pedantic(measure, args=("project", fmt, path, cache_dir), rounds=1, iterations=1)

    assert rows["cold"]["cache"] == "miss" and all(w["cache"] == "hit" for w in warm)
    assert len({rows["cold"]["fingerprint"], *(w["fingerprint"] for w in warm)}) == 1
    assert len({rows["cold"]["digest"], *(w["digest"] for w in warm)}) == 1
    if not fmt.startswith("malaria"):  # malaria's load also splits the cells; the plain loop does not
        assert rows["plain"]["digest"] == rows["cold"]["digest"]  # the same pixels and labels as the plain loop
    benchmark.extra_info.update({kind: {k: v for k, v in r.items() if k != "digest"} for kind, r in rows.items()})
    with capsys.disabled():
        print(table(name, rows))
