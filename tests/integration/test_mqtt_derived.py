"""A meter-style JSON through mosquitto: several entries on one topic, W and Wh converted, a local
time without offset, and a derived produced = good + scrap, into the live twin's KPIs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.publish as publish
import pytest

from connectors.derived import DerivedSource
from connectors.mapping import load_mapping
from connectors.registry import build_sources
from twin.shadow.live_twin import LiveTwin

from support.factories import small_factory
from support.opcua_server import collect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SHANGHAI = ZoneInfo("Asia/Shanghai")

MAPPING = """\
site: suzhou-smt
mqtt:
  - name: press-meter
    url: {url}
    timezone: Asia/Shanghai
    topics:
      - {{pattern: "acme/{{station}}/data", signal: "line1/{{station}}/good", field: counts.good, ts_field: time}}
      - {{pattern: "acme/{{station}}/data", signal: "line1/{{station}}/scrap", field: counts.scrap, ts_field: time}}
      - {{pattern: "acme/{{station}}/data", signal: "line1/{{station}}/energy_kwh", field: e_wh, ts_field: time, unit: Wh}}
      - {{pattern: "acme/{{station}}/data", signal: "line1/{{station}}/power_kw", field: p_w, ts_field: time, unit: W}}
derived:
  - {{signal: line1/printer/produced, expr: "line1/printer/good + line1/printer/scrap"}}
"""


def message(ts: float, good: int, scrap: int, wh: float, w: float) -> str:
    local = datetime.fromtimestamp(ts, SHANGHAI).replace(tzinfo=None).isoformat()  # no offset, as the meter sends
    return json.dumps({"counts": {"good": good, "scrap": scrap}, "e_wh": wh, "p_w": w, "time": local})


def test_one_meter_json_feeds_four_signals_and_a_derived_count(mosquitto, tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING.format(url=mosquitto.url), encoding="utf-8")
    factory = small_factory()
    mapping = load_mapping(path, factory)
    t0 = float(int(time.time()) - 60)  # whole seconds, a minute ago: inside the twin's age limit
    readings = [(t0, 100, 5, 1000.0, 2000.0), (t0 + 10, 110, 7, 1250.0, 2500.0), (t0 + 20, 130, 7, 1500.0, 2400.0)]

    async def scenario():
        [source] = build_sources(mapping, factory, tmp_path / "dead")
        assert isinstance(source, DerivedSource)
        twin = LiveTwin(factory, retain_s=None)
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(source.run(queue))
        topic = "acme/printer/data"
        got = []
        try:
            for k, reading in enumerate(readings):
                # the first one retained, so it arrives whenever the subscription is made; each later
                # one after the previous one came back, so none races the subscription
                await asyncio.to_thread(publish.single, topic, message(*reading), qos=1, retain=k == 0,
                                        hostname=mosquitto.host, port=mosquitto.port)
                got += await collect(queue, lambda g, ts=reading[0]: any(
                    s.signal == "line1/printer/power_kw" and s.ts == ts for s in g))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for s in got:
            twin.add(s)
        return got, source.stats(), twin.report(t0, t0 + 30)

    got, stats, report = asyncio.run(scenario())
    produced = [(s.value, round(s.ts - t0, 6)) for s in got if s.signal == "line1/printer/produced"]
    # 100 + 5 at t0; at t0 + 10 good (110 + 5) then scrap (110 + 7) a microsecond later; at t0 + 20
    # good (130 + 7); scrap unchanged at the same instant adds nothing
    assert produced == [(105.0, 0.0), (115.0, 10.0), (117.0, 10.000001), (137.0, 20.0)]
    assert [s.value for s in got if s.signal == "line1/printer/energy_kwh"] == [1.0, 1.25, 1.5]
    assert [s.value for s in got if s.signal == "line1/printer/power_kw"] == [2.0, 2.5, 2.4]
    assert stats["received"] == 3 and stats["rejected"] == 0 and stats["derived_samples"] == 4
    printer = next(s for s in report.stations if s.station == "printer")
    # 137 - 105 parts, of them 130 - 100 good and 7 - 5 scrap; 1.5 - 1.0 kWh
    assert (printer.produced, printer.good, printer.scrap) == (32, 30, 2)
    assert printer.energy_kwh == pytest.approx(0.5)
