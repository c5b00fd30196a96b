"""The health document of a live run says what is wrong: a sink whose disk is full, a sink that
raises, with the loop's lag beside; and points a sink dropped make the run's exit line."""

from __future__ import annotations

from pathlib import Path

from factory_models import load_factory
from twin.runtime.live import LiveOptions, LiveRun
from twin.runtime.sinks import Sinks
from twin.runtime.supervisor import lost_work
from twin.shadow.live_twin import LiveTwin

SMT = Path(__file__).parents[2] / "configs" / "demo_smt.yaml"
FACTORY = load_factory(SMT)


class FullDisk:
    """A sink that spools to a full disk: it takes nothing more and says so in its health."""

    sink_name = "influxdb"

    def __init__(self) -> None:
        self.dropped = 0

    def write_windows(self, records) -> int:
        self.dropped += len(list(records))
        return 0

    def write_emissions(self, records) -> int:
        return self.write_windows(records)

    def write_samples(self, samples, site) -> int:
        return self.write_windows(samples)

    def health(self) -> dict:
        full = self.dropped > 0
        return {"disk_full": full, "reasons": ["spool: disk full, new points dropped"] if full else [], "dropped": self.dropped, "dropped_disk_full": self.dropped}

    def close(self) -> dict:
        return {"written": 0, "dropped": self.dropped, "dropped_disk_full": self.dropped, "corrupt_records": 0}


class HealthFails(FullDisk):
    sink_name = "other"

    def health(self) -> dict:
        raise RuntimeError("health check broke")


def live_run(*sinks) -> LiveRun:
    twin = LiveTwin(FACTORY, clock=lambda: 1.7e9)
    return LiveRun(FACTORY, SMT, twin, [], LiveOptions(progress=False, sinks=Sinks(store=None), extra_sinks=sinks))


def test_health_is_degraded_naming_a_full_disk_and_a_failing_sink():
    full = FullDisk()
    run = live_run(full)
    assert run.health()["status"] == "ok" and run.health()["reasons"] == []
    full.dropped = 12
    h = run.health()
    assert h["status"] == "degraded"
    assert h["reasons"] == ["spool: disk full, new points dropped", "sink:influxdb: 12 point(s) dropped"]
    assert set(h["loop_lag_s"]) >= {"p50", "p99", "max"}
    run.close()
    broken = live_run(HealthFails())
    h = broken.health()
    assert h["status"] == "degraded" and h["sinks"]["other"] == {"error": "health failed"}
    assert any(r.startswith("sink:other: ") and "health check broke" in r for r in h["reasons"])
    assert h["errors"]["sink:other"]["count"] == 1
    broken.close()


def test_points_a_sink_dropped_make_the_exit_line():
    full = FullDisk()
    full.dropped = 7
    blocks = live_run(full).close()
    line = lost_work({}, blocks)
    assert line == "the twin or its sinks stopped working: sink:influxdb dropped 7 point(s) (disk_full 7)"
    assert lost_work({}, {"influxdb": {"written": 5, "dropped": 0}, "store": {"written": 9}}) is None
