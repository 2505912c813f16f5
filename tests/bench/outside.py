"""Runs of the command line in a home and a temporary folder of their own, to see what they leave outside the
results and the cache."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Variables that would let a command write elsewhere than the test gives it, removed from its environment.
_MOVED = ("KERAS_HOME", "MPLCONFIGDIR", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")


def run_isolated(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path, Path, Path]:
    """`python -m bench ARGS --out tmp_path/out` under umask 022 with HOME, TMPDIR and BENCH_CACHE_DIR of its own:
    (the result, home, temporary folder, cache). The temporary folder is a short one in /tmp (Ray's socket paths
    in it may not pass 107 bytes), removed by the caller."""
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    tmp = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in _MOVED}
    env.update(HOME=str(home), TMPDIR=str(tmp), BENCH_CACHE_DIR=str(cache))
    result = subprocess.run([sys.executable, "-m", "bench", *args, "--out", str(tmp_path / "out")], env=env,
                            capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))
    return result, home, tmp, cache


def left(folder: Path) -> list[str]:
    """Everything under folder, as paths relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
