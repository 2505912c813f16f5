"""What a data set loads as now, found in a child process under a run's limits: the driver's check on resume.

A recorded run counts as done only if it saw the data its data set loads as now. Loading reads the user's
files (a folder may hold anything: a FIFO, a link to /dev/zero, a sparse file of terabytes), so the driver never
loads one itself, while it holds the results folder: a child loads it under the same time and memory limits a
run has (bench.run.supervise.watch), and a load that fails or is stopped says the data cannot be read now, which is
not the data a run saw. The child also fills the data cache, so the runs that follow read it warm.

Started as `python -m bench.run.data_check DATASET_REF_JSON`; its last line of output is a JSON object,
{"fingerprint": ...} or {"error": ...}.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

from bench.datasets.cache import REFRESH_ENV
from bench.run.spec import DatasetRef
from bench.run.supervise import Limits, default_rss_cap_mb, harness_env, kill_group, watch

# The child's module (its main loads the data set).
CHILD_MODULE = "bench.run.data_check"
# How much of the child's output is kept for an error without a last line (a crash).
OUTPUT_TAIL_CHARS = 2000
# A reason stays one readable line.
REASON_CHARS = 500


@dataclass(frozen=True)
class DataCheck:
    """What a data set loads as now: its fingerprint, or why it could not be loaded ('' when it was)."""

    fingerprint: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether the data set loaded."""
        return not self.error


def check(ref: DatasetRef, timeout_s: float | None, limits: Limits, refresh: bool = False) -> DataCheck:
    """Loads the data set in a child process stopped at timeout_s (None: no time limit) or the memory limit
    (the machine's default share when limits names none); refresh decodes it again instead of reading the
    cache."""
    cap = limits.max_rss_mb if limits.max_rss_mb is not None else default_rss_cap_mb()
    limits = Limits(grace_s=min(limits.grace_s, 5.0), max_rss_mb=cap)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **harness_env()}
    env.pop(REFRESH_ENV, None)
    if refresh:
        env[REFRESH_ENV] = "1"
    arg = json.dumps(asdict(ref))
    # An unnamed temporary file (nothing is left behind, whatever happens): a pipe would stall a chatty child.
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-m", CHILD_MODULE, arg], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            stopped = watch(proc, limits, timeout_s, "loading the data set")
        except BaseException:
            kill_group(proc, signal.SIGKILL)
            proc.wait()
            raise
        kill_group(proc, signal.SIGKILL)  # decoding processes it may have left
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    if stopped.reason:
        return DataCheck(error=stopped.reason)
    lines = text.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except ValueError:
        said = {}
    if not isinstance(said, dict) or not (said.get("fingerprint") or said.get("error")):
        last = " ".join(text[-OUTPUT_TAIL_CHARS:].split()[-40:]) or "no output"
        return DataCheck(error=f"the load exited with code {proc.returncode}: {last}"[:REASON_CHARS])
    if said.get("error"):
        return DataCheck(error=" ".join(str(said["error"]).split())[:REASON_CHARS])
    return DataCheck(fingerprint=str(said["fingerprint"]))


def main(argv: list[str] | None = None) -> int:
    """Entry point: loads the data set the JSON argument names and prints its fingerprint or the error."""
    from bench.datasets.registry import load_data

    args = sys.argv[1:] if argv is None else argv
    ref = json.loads(args[0])
    try:
        data = load_data(ref["name"], dict(ref.get("options") or ()), ref.get("max_train"), ref.get("max_test"))
        said = {"fingerprint": str(data.info.get("fingerprint", ""))}
    except Exception as exc:  # noqa: BLE001 - any load error is what the driver needs to hear
        said = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(said), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
