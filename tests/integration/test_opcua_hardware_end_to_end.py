"""Third-party hardware end to end (issue 12, "Done when"): a vendor-style OPC UA server written here
(PackML integer states, a 16-bit good counter that rolls over, restarted mid-run on the same port)
and an MQTT meter sending one JSON with energy and power and a local time without an offset, into
the live twin. The twin's state time elements, produced count, energy and state after the restart
equal the ground truth the test writes down.

Time is the test's: the twin's clock and every source time are set by the script below, so the
figures are exact, the connection gap included (it starts and ends at the twin's clock when the
loss and the reconnect arrive, which the test holds still until they have). Gap tolerance: 0 s.

Timeline (seconds after T0 = 2026-03-02 06:00 UTC = 14:00 in Asia/Shanghai), station line1/printer:

    0     state 6 (PackML Execute: PRODUCING), good counter 65530, meter 100.0 kWh, 2500 W
    300   good 65535
    600   good 3                 (rolled over: 65531..65535 and 0..3 = 9 parts)
    1200  state 11 (Held: DOWN, an internal stop)
    1500  the server stops               -> UNKNOWN from 1500 (the PLC feeds the state)
    1800  the server is back with the same values and source times: state 11 from 1200 is re-sent
                                         -> DOWN restored from 1800, not a duplicate
    2400  state 6                         -> PRODUCING
    3000  meter 101.5 kWh; the report ends

Ground truth: APT 1200 + 600 = 1800 s, ADET 300 + 600 = 900 s, unknown 300 s, produced = good = 9,
energy 101.5 - 100.0 = 1.5 kWh, state after the restart DOWN, at the end PRODUCING.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
from asyncua import ua
from paho.mqtt.enums import CallbackAPIVersion
from support.opcua_server import FACTORY, free_port
from support.vendor_opcua import VENDOR_URI, VendorPlc, until

from connectors.mapping import load_mapping
from connectors.registry import build_sources
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

T0 = parse_ts("2026-03-02T06:00:00Z")
SHANGHAI = ZoneInfo("Asia/Shanghai")
TAGS = {
    "Press.StateCurrent": (6, ua.VariantType.Int32, None, None),
    "Press.GoodCount": (65530, ua.VariantType.UInt16, None, None),
}

MAPPING = """
site: suzhou-smt
opcua:
  - name: press-plc
    endpoint: {endpoint}
    subscription: {{publishing_interval_ms: 50, sampling_interval_ms: 0, queue_size: 100}}
    nodes:
      - {{node: "nsu={uri};s=DB10.Press.StateCurrent", signal: line1/printer/state, values: packml}}
      - {{node: "nsu={uri};s=DB10.Press.GoodCount", signal: line1/printer/good, rollover: 65535}}
      - {{node: "nsu={uri};s=DB10.Press.GoodCount", signal: line1/printer/produced, rollover: 65535}}
mqtt:
  - name: meter
    url: {mqtt}
    client_id: test-hw-meter-twin
    timezone: Asia/Shanghai
    topics:
      - {{pattern: "meters/press", signal: line1/printer/energy_kwh, field: e_kwh, ts_field: time}}
      - {{pattern: "meters/press", signal: line1/printer/power_kw, field: p_w, unit: W, ts_field: time}}
"""


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def meter_payload(dt: float, e_kwh: float) -> bytes:
    local = datetime.fromtimestamp(T0 + dt, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")  # no offset
    return json.dumps({"e_kwh": e_kwh, "p_w": 2500, "time": local}).encode()


def test_vendor_plc_and_meter_give_the_ground_truth_across_a_restart(mosquitto, tmp_path):
    async def main():
        clock = Clock()
        plc = VendorPlc(free_port(), {t: (v[0], T0) for t, v in TAGS.items()}, TAGS)
        await plc.start()
        path = tmp_path / "mapping.yaml"
        path.write_text(MAPPING.format(endpoint=plc.endpoint, uri=VENDOR_URI, mqtt=mosquitto.url))
        mapping = load_mapping(path, FACTORY)
        sources = build_sources(mapping, FACTORY, tmp_path / "dead")
        twin = LiveTwin(FACTORY, clock=clock, source_signals={s.name: s.signals for s in sources})
        queue: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.create_task(s.run(queue)) for s in sources]
        tasks.append(asyncio.create_task(twin.consume(queue)))
        meter = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="meter-press")
        meter.connect(mosquitto.host, mosquitto.port)
        meter.loop_start()
        used = lambda: twin.router.used

        async def publish_meter(dt: float, e_kwh: float) -> None:
            before = used()
            info = meter.publish("meters/press", meter_payload(dt, e_kwh), qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 10)
            await until(lambda: used() >= before + 2, 15, f"meter reading at {dt:g}")

        async def plc_update(dt: float, tag: str, value, signals: int) -> None:
            before = used()
            clock.t = T0 + dt
            await plc.update(tag, value, T0 + dt)
            await until(lambda: used() >= before + signals, 15, f"{tag} = {value} at {dt:g}")

        try:
            await until(lambda: twin.connections == {"press-plc": "up", "meter": "up"}, 15, "both sources up")
            await until(lambda: used() >= 3, 15, "the PLC's values at start")
            await publish_meter(0, 100.0)
            await plc_update(300, "Press.GoodCount", 65535, 2)
            await plc_update(600, "Press.GoodCount", 3, 2)
            await plc_update(1200, "Press.StateCurrent", 11, 1)
            clock.t = T0 + 1500
            await plc.stop()
            await until(lambda: twin.connections["press-plc"] == "down", 15, "the loss noticed")
            clock.t = T0 + 1800
            plc = VendorPlc(plc.port, dict(plc.values), TAGS)  # same values, same source times
            await plc.start()
            await until(lambda: twin.connections["press-plc"] == "up" and twin.restored == 3, 15,
                        "state, good and produced re-sent and restored")
            after_restart = twin.snapshot(T0 + 1800).states["line1/printer"]
            await plc_update(2400, "Press.StateCurrent", 6, 1)
            clock.t = T0 + 3000
            await publish_meter(3000, 101.5)
            (st,) = [s for s in twin.report(T0, T0 + 3000).stations if s.station == "printer"]
            end_state = twin.snapshot(T0 + 3000).states["line1/printer"]
            stats = {s.name: s.stats() for s in sources}
        finally:
            meter.loop_stop()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await plc.stop()
        return st, after_restart, end_state, twin, stats

    st, after_restart, end_state, twin, stats = asyncio.run(asyncio.wait_for(main(), 100))
    assert (st.apt_s, st.adet_s, st.unknown_s) == (1800.0, 900.0, 300.0)
    assert st.produced == 9 and st.good == 9
    assert st.energy_kwh == pytest.approx(1.5)
    assert after_restart == "DOWN" and end_state == "PRODUCING"
    assert twin.router.rejected == {}
    assert stats["press-plc"]["reconnects"] == 1 and stats["press-plc"]["rejected"] == 0
    assert stats["meter"]["rejected"] == 0
    (gap,) = twin.gaps
    assert (gap["start"], gap["end"], gap["stations"]) == (T0 + 1500, T0 + 1800, ["line1/printer"])
