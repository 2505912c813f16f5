"""Run metadata (after AlgoPerf): library versions, hardware, git commit; never the hostname."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from bench.core.options import package_version

# Packages that shape every run's results; a run adds the library its system wraps (System.library).
PACKAGES = ("bench", "numpy", "tensorflow", "keras", "scikit-learn", "pandas", "jax", "torch")
REPO_ROOT = Path(__file__).resolve().parents[2]


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that shape results, plus `extra` (those not installed are left out)."""
    out = {"python": platform.python_version()}
    for name in dict.fromkeys((*PACKAGES, *extra)):
        version = package_version(name)
        if version:
            out[name] = version
    return out


@cache
def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def memory_gb() -> float:
    """Total physical memory in GiB."""
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


def gpu_models() -> list[str]:
    """GPU names visible to the Keras backend in use (only asked once it is imported)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    try:
        if backend == "tensorflow" and "tensorflow" in sys.modules:
            import tensorflow as tf

            return [tf.config.experimental.get_device_details(d).get("device_name", d.name)
                    for d in tf.config.list_physical_devices("GPU")]
        if backend == "torch" and "torch" in sys.modules:
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if backend == "jax" and "jax" in sys.modules:
            import jax

            return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    except Exception:  # noqa: BLE001 - metadata must never fail a run
        return []
    return []


@cache
def git_commit() -> str:
    """The repository's commit, with '-dirty' when the code has uncommitted changes; '' outside git.

    Changes under results/ do not count: runs write their own records there (the committed example reports),
    so every run into them would otherwise call its own code dirty.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty else "")


def hardware_label(gpus: list[str]) -> str:
    """Short description for tables and plot titles, e.g. '2x Intel Xeon ... (CPU only)'."""
    cpu = f"{cpu_count()}x {cpu_model()}"
    return f"{cpu} + {gpus[0]}" if gpus else f"{cpu} (CPU only)"


def collect(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything worth knowing to reproduce or compare a run (with the versions of `packages` too); no hostname."""
    gpus = gpu_models()
    return {
        "versions": package_versions(packages),
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": cpu_count(),
        "memory_gb": memory_gb(),
        "gpus": gpus,
        "hardware": hardware_label(gpus),
        "git_commit": git_commit(),
    }
