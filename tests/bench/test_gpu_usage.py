import sys
import time

import pytest

from bench.measure.gpu_usage import SAMPLE_INTERVAL_S, GpuSampler, GpuUsage
from tests.bench.fakes import FakeNvml, FakeNVMLError

INTERVAL = 0.02
FIELDS = ["gpu_count", "gpu_model", "gpu_s", "gpu_busy_s", "gpu_mem_peak_mb", "gpu_energy_j"]
NONE_FIELDS = {"gpu_count": None, "gpu_model": "", "gpu_s": None, "gpu_busy_s": None, "gpu_mem_peak_mb": None,
               "gpu_energy_j": None}


def timed_window(sampler, seconds):
    """Runs an idle window of about `seconds`; returns its wall time."""
    t0 = time.monotonic()
    with sampler.window():
        time.sleep(seconds)
    return time.monotonic() - t0


def test_two_held_gpus_over_one_window():
    nvml = FakeNvml()
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1,3").start()
    wall = timed_window(sampler, 0.3)
    usage = sampler.stop()

    assert usage.gpu_count == 2
    assert usage.gpu_model == "NVIDIA H200"
    assert usage.gpu_s == pytest.approx(2 * wall, rel=0.25)
    assert usage.gpu_busy_s == pytest.approx(1.5 * wall, rel=0.25)  # 50% + 100%
    # Devices 0 and 2 use more memory but are not held.
    assert usage.gpu_mem_peak_mb == pytest.approx(300)
    # The thread sampled during the window, not only at its entry and exit (2 reads per sample).
    assert nvml.util_reads >= 2 * 5
    assert nvml.inits == 1 and nvml.shutdowns == 1


def test_busy_time_follows_utilisation_over_time():
    nvml = FakeNvml(util=(0, 100, 0, 0))
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1").start()
    t0 = time.monotonic()
    with sampler.window():
        time.sleep(0.15)
        nvml.util[1] = 0  # busy for the first half only
        time.sleep(0.15)
    wall = time.monotonic() - t0
    usage = sampler.stop()

    assert usage.gpu_s == pytest.approx(wall, rel=0.25)
    assert usage.gpu_busy_s == pytest.approx(0.15, abs=0.06)


def test_uuid_selection_with_abbreviated_prefix_and_bytes():
    nvml = FakeNvml(names=["NVIDIA A100", "NVIDIA H200", "NVIDIA H200", "NVIDIA L4"], bytes_strings=True)
    visible = f"{nvml.uuids[2][:10]},{nvml.uuids[0]}"
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible=visible).start()
    timed_window(sampler, 0.05)
    usage = sampler.stop()

    assert usage.gpu_count == 2
    assert usage.gpu_model == "NVIDIA H200 + NVIDIA A100"
    assert usage.gpu_mem_peak_mb == pytest.approx(9000)  # device 0 is held this time
    # Devices 2 and 0 run at 20% and 10%.
    assert usage.gpu_busy_s == pytest.approx(0.3 * usage.gpu_s / 2, rel=0.05)


def test_unset_visible_means_all_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = GpuSampler(interval_s=INTERVAL, nvml=FakeNvml()).start()
    timed_window(sampler, 0.02)
    usage = sampler.stop()
    assert usage.gpu_count == 4
    assert usage.gpu_mem_peak_mb == pytest.approx(9000)


def test_visible_is_read_from_the_environment_at_start(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    sampler = GpuSampler(interval_s=INTERVAL, nvml=FakeNvml())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    sampler.start()
    timed_window(sampler, 0.02)
    usage = sampler.stop()
    assert usage.gpu_count == 2
    assert usage.gpu_mem_peak_mb == pytest.approx(7000)


def test_invalid_entry_ends_the_list_as_in_cuda():
    nvml = FakeNvml()
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="3,7,1").start()
    timed_window(sampler, 0.02)
    assert sampler.stop().gpu_count == 1


def test_time_outside_windows_is_not_counted():
    nvml = FakeNvml()
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1,3").start()
    t0 = time.monotonic()
    fit = timed_window(sampler, 0.15)
    reads = nvml.util_reads
    time.sleep(0.3)
    assert nvml.util_reads == reads  # nothing is read between windows
    predict = timed_window(sampler, 0.1)
    total = time.monotonic() - t0
    usage = sampler.stop()

    inside = fit + predict
    assert usage.gpu_s == pytest.approx(2 * inside, rel=0.25)
    assert usage.gpu_s < 2 * total * 0.7
    assert usage.gpu_busy_s == pytest.approx(1.5 * inside, rel=0.25)


def test_very_short_window_still_gets_a_reading():
    nvml = FakeNvml()
    sampler = GpuSampler(interval_s=10.0, nvml=nvml, visible="0").start()
    with sampler.window():
        pass
    started = time.monotonic()
    usage = sampler.stop()

    assert time.monotonic() - started < 1.0  # stop() does not wait out the 10 s interval
    assert usage.gpu_count == 1
    assert usage.gpu_mem_peak_mb == pytest.approx(9000)
    assert usage.gpu_busy_s is not None and 0 <= usage.gpu_busy_s < 0.1
    assert nvml.util_reads == 2  # entry and exit


def test_nested_windows_count_once():
    sampler = GpuSampler(interval_s=INTERVAL, nvml=FakeNvml(), visible="1").start()
    t0 = time.monotonic()
    with sampler.window():
        with sampler.window():
            time.sleep(0.05)
        time.sleep(0.05)
    wall = time.monotonic() - t0
    assert sampler.stop().gpu_s == pytest.approx(wall, rel=0.25)


@pytest.mark.parametrize("visible", ["", "-1", "NoDevFiles", " "])
def test_no_held_gpu_gives_all_none(visible):
    nvml = FakeNvml()
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible=visible).start()
    timed_window(sampler, 0.02)
    usage = sampler.stop()
    assert usage == GpuUsage()
    assert usage.as_fields() == NONE_FIELDS
    assert nvml.util_reads == 0
    assert nvml.shutdowns == nvml.inits == 1


def test_nvml_init_error_gives_all_none():
    nvml = FakeNvml(init_error=True)
    with GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="0") as sampler, sampler.window():
        time.sleep(0.02)
    assert sampler.stop().as_fields() == NONE_FIELDS
    assert nvml.shutdowns == 0  # no shutdown without a successful init


def test_missing_pynvml_gives_all_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    sampler = GpuSampler(interval_s=INTERVAL, visible="0").start()
    timed_window(sampler, 0.02)
    assert sampler.stop().as_fields() == NONE_FIELDS


def test_errors_on_some_samples_are_skipped():
    nvml = FakeNvml()
    nvml.fail_every = 3
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1,3").start()
    wall = timed_window(sampler, 0.3)
    usage = sampler.stop()

    assert nvml.util_reads >= 10
    assert usage.gpu_count == 2
    assert usage.gpu_s == pytest.approx(2 * wall, rel=0.25)
    # Skipped readings' intervals are covered by the next good one: utilisation is constant, so no loss.
    assert usage.gpu_busy_s == pytest.approx(1.5 * wall, rel=0.25)
    assert usage.gpu_mem_peak_mb == pytest.approx(300)


def test_every_sample_failing_gives_unknown_utilisation_not_zero():
    nvml = FakeNvml()
    nvml.fail_reads = True
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1").start()
    wall = timed_window(sampler, 0.1)
    usage = sampler.stop()
    assert usage.gpu_count == 1
    assert usage.gpu_s == pytest.approx(wall, rel=0.25)  # held time is known from the clock
    assert usage.gpu_busy_s is None
    assert usage.gpu_mem_peak_mb is None


def test_stop_is_idempotent_and_ends_sampling():
    nvml = FakeNvml()
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1,3").start()
    timed_window(sampler, 0.05)
    first = sampler.stop()
    second = sampler.stop()
    assert first == second and first.gpu_count == 2
    assert nvml.shutdowns == 1
    reads = nvml.util_reads
    with sampler.window():  # after stop a window reads nothing and changes nothing
        time.sleep(0.05)
    assert nvml.util_reads == reads
    assert sampler.stop() == first


def test_stop_closes_an_open_window():
    sampler = GpuSampler(interval_s=INTERVAL, nvml=FakeNvml(), visible="3").start()
    with sampler.window():
        time.sleep(0.05)
        usage = sampler.stop()
    assert usage.gpu_s == pytest.approx(0.05, rel=0.5)
    assert usage.gpu_busy_s == pytest.approx(usage.gpu_s, rel=0.01)  # device 3 runs at 100%


def test_as_fields_names_every_field():
    usage = GpuUsage(gpu_count=2, gpu_model="NVIDIA H200", gpu_s=4.0, gpu_busy_s=3.0, gpu_mem_peak_mb=512.0)
    assert list(usage.as_fields()) == FIELDS
    assert usage.as_fields()["gpu_busy_s"] == 3.0


def test_default_interval_is_one_second():
    assert SAMPLE_INTERVAL_S == 1.0


class EnergyNvml(FakeNvml):
    """FakeNvml with NVML's total-energy counters (mJ); each read advances a GPU's counter by its step."""

    def __init__(self, start=(0, 0, 0, 0), step_mj=(0, 0, 0, 0), supported=True, **kwargs):
        super().__init__(**kwargs)
        self.energy = list(start)
        self.step_mj = list(step_mj)
        self.supported = supported

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.supported:
            raise FakeNVMLError("Not Supported")
        value = self.energy[h[1]] % 2**64
        self.energy[h[1]] += self.step_mj[h[1]]
        return value


def test_energy_is_the_held_gpus_counter_difference_over_the_windows():
    nvml = EnergyNvml(step_mj=(1, 250_000, 7, 1_000_000))
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1,3").start()
    timed_window(sampler, 0.01)  # fit: one read at each end, so one step per held GPU
    timed_window(sampler, 0.01)  # predict
    usage = sampler.stop()
    # Two windows x (250 J + 1000 J); devices 0 and 2 are not held.
    assert usage.gpu_energy_j == pytest.approx(2 * 1250.0)


def test_energy_across_the_counters_wrap_around():
    nvml = EnergyNvml(start=(0, 2**64 - 100_000, 0, 0), step_mj=(0, 300_000, 0, 0))
    sampler = GpuSampler(interval_s=INTERVAL, nvml=nvml, visible="1").start()
    timed_window(sampler, 0.01)
    assert sampler.stop().gpu_energy_j == pytest.approx(300.0)


def test_energy_is_unknown_where_a_gpu_has_no_counter():
    sampler = GpuSampler(interval_s=INTERVAL, nvml=EnergyNvml(supported=False), visible="0").start()
    timed_window(sampler, 0.01)
    usage = sampler.stop()
    assert usage.gpu_s is not None and usage.gpu_energy_j is None


def test_so_far_counts_the_open_window_without_stopping_the_sampler():
    nvml = EnergyNvml(step_mj=(0, 100_000, 0, 0))
    sampler = GpuSampler(interval_s=10.0, nvml=nvml, visible="1").start()  # no thread sample: reads are explicit
    timed_window(sampler, 0.01)  # a closed window: one step of 100 J
    with sampler.window():
        time.sleep(0.05)
        mid = sampler.so_far()
        assert mid.gpu_energy_j == pytest.approx(200.0)  # the closed window and the open one's read so far
        assert mid.gpu_s >= 0.05
    usage = sampler.stop()
    assert usage.gpu_s >= mid.gpu_s and usage.gpu_energy_j > mid.gpu_energy_j
    assert sampler.so_far() == usage  # after stop: the totals


def test_so_far_is_unknown_energy_where_a_gpu_has_no_counter():
    sampler = GpuSampler(interval_s=10.0, nvml=EnergyNvml(supported=False), visible="1").start()
    with sampler.window():
        assert sampler.so_far().gpu_energy_j is None and sampler.so_far().gpu_s is not None
    sampler.stop()
