"""What the Ray executor exposes to the network: a local Ray it starts listens on loopback only, and an address
where no Ray answers fails at once, in one line naming it (never sending anything beyond this machine)."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from pathlib import Path

import pytest

from bench.options import ConfigError

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
from bench.ray_executor import check_address, start_local_ray  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
# An address that nothing answers must fail well within this (Ray's own connect loop takes minutes).
FAIL_FAST_S = 15.0


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _listeners(pids: set[int]) -> list[tuple[str, int, str]]:
    """(ip, port, process name) of every TCP socket those processes listen on."""
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            out.append((conn.laddr.ip, conn.laddr.port, name))
    return out


def _free_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_local_ray_started_by_the_executor_listens_on_loopback_only() -> None:
    if ray.is_initialized():
        pytest.skip("a Ray is already initialised in this process")
    start_local_ray(num_cpus=2, object_store_memory=80 * 2**20)
    try:
        @ray.remote
        def pid() -> int:
            return os.getpid()

        ray.get([pid.remote() for _ in range(2)])  # the workers' own servers are up too
        ray_pids = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
        listening = _listeners(ray_pids)
        names = {name for _, _, name in listening}
        assert "gcs_server" in names and "raylet" in names, listening  # the check saw Ray's servers
        exposed = [entry for entry in listening if not _loopback(entry[0])]
        assert exposed == [], f"listening beyond loopback: {exposed}"
    finally:
        ray.shutdown()


@pytest.mark.parametrize("form", ["ray://127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_an_address_where_nothing_answers_fails_at_once_naming_it(form: str) -> None:
    address = form.format(port=_free_loopback_port())
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"--ray-address {address}: nothing answers") as caught:
        check_address(address)
    assert time.monotonic() - started < FAIL_FAST_S
    assert "\n" not in str(caught.value)


def test_auto_without_a_cluster_on_this_machine_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray._private import services

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: [])
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    with pytest.raises(ConfigError, match="--ray-address auto: no Ray cluster is running"):
        check_address("auto")
    # A cluster Ray still remembers (RAY_ADDRESS, or `ray start`'s address file) but that is gone.
    port = _free_loopback_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=f"--ray-address auto: nothing answers at 127.0.0.1:{port}"):
        check_address("auto")


def test_a_malformed_address_is_refused() -> None:
    for address in ("tcp://127.0.0.1:1", "127.0.0.1", ""):
        with pytest.raises(ConfigError, match="not a Ray address"):
            check_address(address)


def test_the_command_line_reports_an_unreachable_address_in_one_line_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    if ray.is_initialized():
        pytest.skip("a Ray is already initialised in this process")
    address = f"ray://127.0.0.1:{_free_loopback_port()}"
    started = time.monotonic()
    code = main(["all", "--suite", "smoke", "--executor", "ray", "--ray-address", address,
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert time.monotonic() - started < FAIL_FAST_S
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and address in errors[0], errors
