"""CPU package energy from a fake powercap tree: packages only, windows only, counters that wrap."""

import os
import time
from pathlib import Path

import pytest

from bench.measure.cpu_energy import CpuEnergyMeter, package_domains

INTERVAL = 0.02


def domain(root: Path, name: str, label: str, energy_uj: int, max_uj: int = 2**32 - 1) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "name").write_text(label + "\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder


def set_energy(folder: Path, value: int) -> None:
    """Replaces the counter file whole: a sysfs read never sees it half written, so neither may the meter here."""
    tmp = folder / "energy_uj.tmp"
    tmp.write_text(f"{value}\n")
    os.replace(tmp, folder / "energy_uj")


def test_only_readable_package_domains_count(tmp_path):
    domain(tmp_path, "intel-rapl:0", "package-0", 5)
    domain(tmp_path, "intel-rapl:0:0", "core", 5)  # a part of package 0: would count twice
    domain(tmp_path, "intel-rapl:1", "psys", 5)  # the platform, not a package
    broken = domain(tmp_path, "intel-rapl:2", "package-1", 5)
    (broken / "energy_uj").write_text("")  # unreadable, as for non-root users on patched kernels
    assert [d.name for d in package_domains(tmp_path)] == ["intel-rapl:0"]
    assert package_domains(tmp_path / "absent") == []


def test_energy_inside_windows_only_summed_over_packages(tmp_path):
    p0 = domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    p1 = domain(tmp_path, "intel-rapl:1", "package-1", 0)
    meter = CpuEnergyMeter(tmp_path, interval_s=INTERVAL).start()
    set_energy(p0, 2_000_000)  # outside any window: not counted
    with meter.window():
        set_energy(p0, 5_000_000)
        set_energy(p1, 1_500_000)
    set_energy(p0, 9_000_000)  # between fit and predict: not counted
    with meter.window():
        set_energy(p0, 9_250_000)
    assert meter.stop() == pytest.approx(3.0 + 1.5 + 0.25)
    assert meter.stop() == pytest.approx(4.75)  # idempotent


def test_a_counter_that_wraps_during_a_window(tmp_path):
    top = 1_000_000
    p0 = domain(tmp_path, "intel-rapl:0", "package-0", 900_000, max_uj=top)
    meter = CpuEnergyMeter(tmp_path, interval_s=INTERVAL).start()
    with meter.window():
        for value in (990_000, 100_000, 600_000):  # passes the top once, read between each step
            set_energy(p0, value)
            time.sleep(INTERVAL * 5)
    # 900,000 -> 1,000,000 -> 0 -> 600,000: 700,001 uJ (the counter runs 0..top inclusive).
    assert meter.stop() == pytest.approx(0.700001)


def test_no_counters_means_unknown_not_zero(tmp_path):
    meter = CpuEnergyMeter(tmp_path / "no-powercap", interval_s=INTERVAL).start()
    with meter.window():
        pass
    assert meter.stop() is None


def test_a_counter_lost_mid_run_makes_the_total_unknown(tmp_path):
    p0 = domain(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = CpuEnergyMeter(tmp_path, interval_s=INTERVAL).start()
    with meter.window():
        (p0 / "energy_uj").unlink()
    assert meter.stop() is None


def test_so_far_reads_an_open_window_and_is_none_before_any(tmp_path):
    p0 = domain(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = CpuEnergyMeter(tmp_path, interval_s=INTERVAL).start()
    assert meter.so_far() is None  # no window yet: nothing measured
    with meter.window():
        set_energy(p0, 2_000_000)
        time.sleep(INTERVAL * 5)
        assert meter.so_far() == pytest.approx(2.0)
    assert meter.stop() == pytest.approx(2.0) and meter.so_far() == pytest.approx(2.0)
