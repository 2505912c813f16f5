"""One writer per results folder: a driver holds an exclusive lock on the folder for its whole suite.

Two drivers on one folder would each run every run in the same `runs/<run_id>/` folders, each deleting the
other's files, and each plan from its own snapshot of the table. The lock is an flock on a file in the folder,
so the kernel releases it when its holder exits in any way (`kill -9` included): it can never be left stuck. A
holder removes the file as it lets go, so a driver's folder holds no lock file once it has exited.
The file also says who holds it (pid, command, start time), so a second driver can name the holder. Readers
(`bench report`) do not take it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

LOCK_FILE = ".writer.lock"  # in the results folder; hidden, like the store's own lock
WAIT_POLL_S = 1.0  # how often a waiting driver tries again (flock has no timed wait)


class FolderBusy(Exception):
    """Another driver holds the results folder."""


def holder(out_dir: Path | str) -> str:
    """Who holds (or last held) the folder, as 'pid N (command), since T'; '' when the file says nothing."""
    try:
        info = json.loads((Path(out_dir) / LOCK_FILE).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return ""
    if not isinstance(info, dict) or "pid" not in info:
        return ""
    return f"pid {info['pid']} (`{info.get('command', '?')}`), since {info.get('since', '?')}"


@contextlib.contextmanager
def hold(out_dir: Path | str, *, wait: bool = False, command: str | None = None,
         on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Holds the folder's writer lock for the block; raises FolderBusy at once if another process holds it,
    or, with wait, blocks until it is free (calling on_wait once with the holder's description). `command`
    is what the holder's description names (default: this process's arguments).

    Nothing of the lock outlives the block: the lock file is removed while it is still held, and the folders
    made for it are removed again if nothing else was put in them (a command that failed before its first run
    leaves nothing behind)."""
    folder = Path(out_dir)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(folder, wait, on_wait) as lock:
            lock.seek(0)
            lock.truncate()
            lock.write(json.dumps({
                "pid": os.getpid(),
                "command": command or " ".join(["python -m bench", *sys.argv[1:]]),
                "since": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            }))
            lock.flush()
            try:
                yield
            finally:
                # Removed while held: a driver that opened it meanwhile finds it gone once it holds it, and
                # opens the new one (_locked), so two never hold different files.
                with contextlib.suppress(FileNotFoundError):
                    (folder / LOCK_FILE).unlink()
    finally:
        for path in made:  # deepest first
            with contextlib.suppress(OSError):  # not empty: a run's results, or another process's
                path.rmdir()


@contextlib.contextmanager
def _locked(folder: Path, wait: bool, on_wait: Callable[[str], None] | None) -> Iterator[IO[str]]:
    """The folder's lock file, open and flocked: the file that is at its path now, not one a holder removed
    while this process waited for it."""
    path = folder / LOCK_FILE
    told = False
    while True:
        # 'a+' neither truncates (the holder's description must survive our failed attempt) nor needs the file.
        lock = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below or by the caller's block
        try:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    who = holder(folder) or "another process"
                    if not wait:
                        raise FolderBusy(f"results folder {folder} is in use by another bench driver: {who}; wait "
                                         "for it to finish, pass --wait, or choose another --out") from None
                    if not told and on_wait is not None:
                        on_wait(who)
                        told = True
                    time.sleep(WAIT_POLL_S)
            try:
                current = os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if current:
                try:
                    yield lock
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                return
        finally:
            lock.close()
