"""What the Ray executor exposes to the network: a local Ray it starts listens on loopback only, and an address
where no Ray answers fails at once, in one line naming it (never sending anything beyond this machine)."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from pathlib import Path

import pytest

from bench.core.options import ConfigError

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
from bench.run.ray_executor import check_address, start_local_ray  # noqa: E402

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


def test_a_search_process_that_cannot_reach_its_address_fails_in_seconds_naming_it() -> None:
    from bench.core.network import Unreachable, check_reachable

    address = f"127.0.0.1:{_free_loopback_port()}"
    started = time.monotonic()
    with pytest.raises(Unreachable, match=f"cannot reach the Ray cluster \\(its GCS\\) at {address} ") as caught:
        check_reachable(address, "the Ray cluster (its GCS)")
    assert time.monotonic() - started < FAIL_FAST_S
    assert "\n" not in str(caught.value)


def test_ray_keeps_a_loopback_address_loopback_while_the_harness_starts_or_joins_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from ray._private import ray_constants, services

    from bench.core.network import loopback_kept

    # As on a machine whose network address is not loopback (a server's eth0): Ray dials that instead.
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    monkeypatch.setattr(services, "node_ip_address_from_perspective", lambda *a, **k: "192.0.2.77")
    assert services.canonicalize_bootstrap_address("127.0.0.1:6379") == "192.0.2.77:6379"
    with loopback_kept():
        assert services.canonicalize_bootstrap_address("127.0.0.1:6379") == "127.0.0.1:6379"
        assert services.canonicalize_bootstrap_address("10.1.2.3:6379") == "10.1.2.3:6379"  # others untouched
    assert ray_constants.ENABLE_RAY_CLUSTER is True


# A network namespace of this test's own whose primary address is not loopback: 192.0.2.77 (TEST-NET-1, a
# documentation address routed nowhere) on its loopback device, the default route through it, so Ray takes it
# for the machine's network address as it would a server's eth0, and no packet can leave the namespace.
NETNS_SETUP = ("ip link set lo up && ip addr add 192.0.2.77/32 dev lo && "
               "ip route add default dev lo src 192.0.2.77")
SEARCH_SUITE = """\
description = "a search over two workers under a local Ray"
seeds = [0]
timeout = "4m"

[[datasets]]
name = "digits"

[[systems]]
name = "tests.bench.search_fake:TinyRandomSearch"
budgets = ["15s"]
options = { search_workers = 2 }
resources = { num_cpus = 1 }
"""


def _own_network_namespace() -> bool:
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(["unshare", "--net", "sh", "-c", NETNS_SETUP], capture_output=True, timeout=30)
    return probe.returncode == 0


# A whole search of two processes under `bench all` (about 35 s): the rule it guards, Ray's loopback address kept,
# is checked in the default run by the test of loopback_kept above.
@pytest.mark.slow
@pytest.mark.skipif(not _own_network_namespace(),
                    reason="needs root, unshare and ip to make a network namespace whose address is not loopback")
def test_a_search_of_two_workers_under_bench_all_with_the_ray_executor_runs_where_the_address_is_not_loopback(
        tmp_path: Path) -> None:
    """The user's command on a server with a network address: the harness's local Ray listens on loopback, and
    the search's chief joins it there (Ray would dial the network address, where nothing listens, until the
    run's hard limit)."""
    import csv
    import shlex
    import subprocess
    import sys

    from tests.conftest import REPO

    suite = tmp_path / "s.toml"
    suite.write_text(SEARCH_SUITE)
    out = tmp_path / "out"
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "bench", "all", "--suite", str(suite),
                                                "--executor", "ray", "--out", str(out)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    driver = subprocess.Popen(["unshare", "--net", "sh", "-c", f"{NETNS_SETUP} && exec {command}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:  # hung: end the driver and its local Ray with it
            os.killpg(driver.pid, 9)
            driver.wait()
    assert driver.returncode == 0, stderr[-3000:]
    with open(out / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok"], rows
    assert rows[0]["search_workers"] == "2"
    # The worker ran as a Ray task on the run's placement group and asked the chief's oracle (whether it
    # also finished a trial within 15 s depends on how fast its imports are on a loaded machine).
    worker_log = next((out / "runs").glob("*/search-worker1.log")).read_text()
    assert worker_log.rstrip().endswith("search worker1: done"), worker_log[-2000:]
    assert time.monotonic() - started < 200  # a chief that dialled the wrong address sits out the 4-minute limit


def test_a_search_worker_that_cannot_reach_its_chief_exits_in_seconds_with_one_line_naming_it(tmp_path: Path
                                                                                             ) -> None:
    import subprocess
    import sys

    from bench.systems.search.distributed import WorkerPlan

    address = f"127.0.0.1:{_free_loopback_port()}"
    plan = tmp_path / "plan.json"
    plan.write_text(WorkerPlan("worker1", address, "{}", str(tmp_path)).to_json())
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench.run.search_worker", str(plan)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert time.monotonic() - started < FAIL_FAST_S + 30  # the interpreter's imports, then the 5-s dial
    assert done.stdout.strip() == f"search worker1: cannot reach the search's chief at {address} " \
                                  "(Connection refused)", done.stdout
