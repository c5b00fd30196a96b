"""``demo`` writing to InfluxDB through a spool on a disk that fills up: the tick goes on, /health is
degraded and says why, the lost points are counted, and writing resumes once space returns."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

from support.small_disk import fill, small_disk

from connectors.influxdb import InfluxConfig
from factory_models import load_factory
from tests.support.mqtt_broker import free_port
from twin.runtime import Sinks
from twin.runtime.live import DashboardOptions, LiveOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"


def get_health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


def test_demo_survives_a_full_spool_disk_and_resumes(victoria, tmp_path):
    factory = load_factory(SMT)
    port = free_port()
    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        influx = InfluxConfig(url=victoria.url, org="o", bucket="b", spool_path=disk / "spool",
                              flush_interval_s=0.1, retry_initial_s=0.1, retry_max_s=0.5)
        stop = asyncio.Event()
        opts = LiveOptions(speed=120, progress=False, stop=stop, forecast_replications=1,
                           sinks=Sinks(store=tmp_path / "demo.sqlite", influx=influx),
                           dashboard=DashboardOptions(port=port))
        seen: dict[str, dict] = {}

        async def wait_for(what: str, cond) -> dict:
            deadline = asyncio.get_running_loop().time() + 90
            while asyncio.get_running_loop().time() < deadline and not demo.done():
                health = await asyncio.to_thread(get_health, port)
                if health and health.get("spool") and cond(health):
                    seen[what] = health
                    return health
                await asyncio.sleep(0.1)
            raise AssertionError(f"/health never showed {what}: {seen}")

        async def go():
            nonlocal demo
            demo = asyncio.create_task(run_demo(factory, SMT, opts))
            await wait_for("points written", lambda h: h["spool"]["written"] > 0)
            filler = await asyncio.to_thread(fill, disk)
            full = await wait_for("a full disk", lambda h: h["spool"]["disk_full"])
            dropped_then = (await wait_for("points dropped", lambda h: h["spool"]["dropped_disk_full"] > 0)
                            )["spool"]["dropped_disk_full"]
            filler.unlink()
            back = await wait_for("space again", lambda h: not h["spool"]["disk_full"])
            await wait_for("writes after it", lambda h: h["spool"]["written"] > back["spool"]["written"])
            stop.set()
            return await demo, full, dropped_then

        demo = None
        doc, full, dropped_then = asyncio.run(go())
    assert full["status"] == "degraded" and any("disk full" in r for r in full["reasons"]), full
    block = doc["sinks"]["influxdb"]
    assert block["dropped"] >= dropped_then > 0 and block["corrupt_records"] == 0
    assert block["written"] == block["spooled"] and block["spool_depth"] == 0  # all it accepted arrived
    assert "tick" not in doc.get("errors", {}) and not any(k.startswith("sink:") for k in doc.get("errors", {}))
    assert not any("disk full" in r for r in seen["space again"]["reasons"])
