"""The connectivity probe and the progress bar: bounded, local, quiet when not on a terminal."""

from __future__ import annotations

import socket
import time

from bench.datasets import images
from bench.datasets.sources import PROBE_TIMEOUT_S
from bench.datasets.sources import is_online as real_probe  # bound at import, before the conftest's offline stub


def test_probe_connects_to_a_local_listener_and_fails_fast_on_a_closed_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert real_probe("127.0.0.1", port)
    started = time.monotonic()
    assert not real_probe("127.0.0.1", port)
    assert time.monotonic() - started < PROBE_TIMEOUT_S + 0.5


def test_progress_bar_is_silent_off_a_terminal() -> None:
    assert images.progress_bar("x").disable  # pytest captures stderr, so it is not a TTY
