"""Runs of the command line in a home and a temporary folder of their own, to see what they leave outside the
results and the cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Variables that would let a command write elsewhere than the test gives it, removed from its environment.
_MOVED = ("KERAS_HOME", "MPLCONFIGDIR", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")


class Sandbox:
    """A home, a temporary folder and a cache of their own for `python -m bench` under umask 022; the temporary
    folder is a short one in /tmp (Ray's socket paths in it may not pass 107 bytes), removed on close."""

    def __init__(self, tmp_path: Path) -> None:
        self.home, self.cache, self.out = tmp_path / "home", tmp_path / "cache", tmp_path / "out"
        self.home.mkdir(parents=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`python -m bench ARGS --out OUT` in the sandbox."""
        env = {k: v for k, v in os.environ.items() if k not in _MOVED}
        env.update(HOME=str(self.home), TMPDIR=str(self.tmp), BENCH_CACHE_DIR=str(self.cache))
        return subprocess.run([sys.executable, "-m", "bench", *args, "--out", str(self.out)], env=env,
                              capture_output=True, text=True, timeout=timeout, preexec_fn=lambda: os.umask(0o022))

    def left_outside(self) -> list[str]:
        """What the commands left in the home and the temporary folder."""
        return [*left(self.home), *left(self.tmp)]

    def close(self) -> None:
        """Removes the temporary folder."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def left(folder: Path) -> list[str]:
    """Everything under folder, as paths relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
