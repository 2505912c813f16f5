"""Reaching another process over the network: failing in seconds where nothing listens, and keeping Ray on
loopback where it was told to listen there (the Ray executor and a search's processes)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

# How long a process waits for an address it must reach to accept a connection before it fails: Ray's and gRPC's
# own connect loops retry for minutes, up to a run's hard limit.
CONNECT_TIMEOUT_S = 5.0


class Unreachable(RuntimeError):
    """A process could not connect to the address it was given."""


def check_reachable(address: str, what: str) -> None:
    """Returns once something accepts a connection at host:port `address`; else raises Unreachable, one line
    naming `what` and the address, within CONNECT_TIMEOUT_S."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach {what} at {address} ({reason})") from None


@contextlib.contextmanager
def loopback_kept() -> Iterator[None]:
    """While Ray starts or joins a cluster, an address of 127.0.0.1 stays 127.0.0.1.

    Ray replaces a loopback address (a node's, or a cluster's it is told to join) with this machine's network
    address unless it believes it runs on a laptop (its ENABLE_RAY_CLUSTER constant, read when an address is
    resolved); a Ray listening on loopback only would then be dialled where nothing listens. Addresses that
    are not loopback are untouched.
    """
    from ray._private import ray_constants

    enabled = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled
