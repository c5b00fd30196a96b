"""The demo's twin runs on simulated time; its MQTT source knows only the wall clock. A broker
restart mid-run must put the connection gap on the simulated timeline, inside the run, and leave no
station UNKNOWN once the stations have reported their states again."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from factory_models import load_factory
from twin.runtime import Sinks
from twin.runtime.live import LiveOptions, run_demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SMT = Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml"
SPEED = 300.0


def sim_time(doc: dict) -> float:
    return datetime.fromisoformat(doc["now"].replace("Z", "+00:00")).timestamp()


def states(doc: dict) -> dict[str, str]:
    return {f"{ln['line']}/{st['station']}": st["state"] for ln in doc["lines"] for st in ln["stations"]}


async def until(cond, what: str, timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.05)


def test_a_broker_restart_leaves_no_demo_station_unknown(mosquitto):
    factory = load_factory(SMT)
    docs: list[dict] = []
    marks: dict[str, float] = {}

    async def scenario() -> dict:
        stop = asyncio.Event()
        opts = LiveOptions(speed=SPEED, mqtt_url=mosquitto.url, progress=False, sinks=Sinks(), stop=stop,
                           on_state=docs.append, forecast_replications=1, forecast_every_s=3600)

        async def restart_midway() -> None:
            await until(lambda: docs and docs[-1]["connections"].get("meters") == "up"
                        and docs[-1]["samples"]["used"] > 500, "the meters connected and feeding")
            marks["before"] = sim_time(docs[-1])
            await asyncio.to_thread(mosquitto.restart)
            marks["restarted"] = sim_time(docs[-1])
            # back up, and an hour of simulated time later: every station has changed state since
            await until(lambda: docs[-1]["connections"].get("meters") == "up"
                        and sim_time(docs[-1]) > marks["restarted"] + 3600, "the meters back and an hour on")
            stop.set()

        helper = asyncio.create_task(restart_midway())
        try:
            return await run_demo(factory, SMT, opts)
        finally:
            stop.set()
            await helper

    doc = asyncio.run(scenario())
    t0 = datetime.fromisoformat(doc["start"].replace("Z", "+00:00")).timestamp()
    t1 = datetime.fromisoformat(doc["end"].replace("Z", "+00:00")).timestamp()
    gaps = [g for g in doc["connections"]["gaps"] if g["source"] == "meters"]
    assert gaps, doc["connections"]
    for g in gaps:  # on the simulated timeline, around the restart: not 11 months ahead on the wall clock
        assert marks["before"] - 60 <= g["start"] <= g["end"] <= marks["restarted"] + 3600, (g, marks)
        assert t0 <= g["start"] <= t1
    assert doc["connections"]["state"]["meters"] == "up"
    final = states(docs[-1])
    assert final and "UNKNOWN" not in final.values(), final
    assert set(doc["samples"]["rejected_by_reason"]) <= {"duplicate"}, doc["samples"]["rejected_by_reason"]
