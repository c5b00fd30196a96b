"""Issue 12, "Done when": a third-party plant through a mapping file into the live twin and its store.

Not the project's simulators: an S7-style OPC UA server written for the test
(tests/support/thirdparty_plc.py: its own namespace URI, PackML StateCurrent as Int32, 16-bit good
and scrap counters that roll over at 65535, the oven's drive power in W, a restart on the same port
in the middle of the run) and a field meter on MQTT (tests/support/thirdparty_meter.py: one JSON
with the energy register in kWh, the power in W and a local time without offset). The mapping
uses the issue's keys as an integrator writes them: ``values: packml``, ``rollover: 65535``,
``unit: W``, ``timezone:`` on the source, two topic entries on one topic, ``derived:`` produced =
good + scrap. The run goes through the LiveRun API exactly as ``factory-twin run`` does
(twin/runtime/live.py, run_mapping) into an SQLite store.

The test keeps its own ground truth (what it told the plant to do, and when) and compares the
twin's figures over the scenario's window [t_a, t_b]:

- state time elements: exact (±0.05 s) for every state, except that the twin's UNKNOWN time while
  the PLC was away replaces time of the state the press was really in then (Execute, so APT):
  APT + unknown = true APT (±0.05 s); this is the gap tolerance, bounded by the restart plus the
  reconnect the issue allows (the server's absence <= unknown <= that + 5 s);
- produced, good and scrap counts: exact, across the 16-bit rollover and the restart; the 3 parts
  counted while the PLC was away are ``produced_in_gap``, with the first part after the reconnect
  (its increment starts at a count stamped inside the gap);
- the press's energy: the meter's register between t_a and t_b, read linearly between readings
  (exact here: the power is constant between two readings);
- the state right after the restart (Execute, restored at once from the re-sent value) and at the end.
"""

from __future__ import annotations

import asyncio
import time
from zoneinfo import ZoneInfo

import pytest
from support.opcua_server import free_port
from support.thirdparty_meter import TOPIC, ThirdPartyMeter
from support.thirdparty_plc import ThirdPartyPlc

from connectors.mapping import load_mapping
from connectors.registry import build_sources
from factory_models import load_factory
from twin.runtime import Sinks
from twin.runtime.live import LiveOptions, LiveRun
from twin.shadow.live_twin import LiveTwin
from twin.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
POWER = {"producing": 9, "setup": 3, "down": 1.5, "idle": 3, "planned_stop": 0.5, "no_shift": 0.1}

FACTORY = f"""\
site: {{name: acme-press, country: CN}}
products: [{{name: bracket}}]
calendar: {{timezone: Asia/Shanghai, workdays: [mon, tue, wed, thu, fri, sat, sun]}}
lines:
  - name: l1
    stations:
      - {{name: press, cycle_time_s: {{bracket: 0.4}}, power_kw: {POWER}}}
      - {{name: oven, cycle_time_s: {{bracket: 0.4}}, power_kw: {POWER}}}
"""

MAPPING = """\
site: acme-press
opcua:
  - name: press-plc
    endpoint: {endpoint}
    subscription: {{publishing_interval_ms: 50, sampling_interval_ms: 0, queue_size: 100}}
    nodes:
      - {{node: "{ns};s=PLC_1.Press.StateCurrent", signal: l1/press/state, values: packml}}
      - {{node: "{ns};s=PLC_1.Press.GoodCount", signal: l1/press/good, rollover: 65535}}
      - {{node: "{ns};s=PLC_1.Press.ScrapCount", signal: l1/press/scrap, rollover: 65535}}
      - {{node: "{ns};s=PLC_1.Oven.ActivePower", signal: l1/oven/power_kw, unit: W}}
mqtt:
  - name: press-meter
    url: {mqtt}
    timezone: Asia/Shanghai
    topics:
      - {{pattern: "{topic}", signal: l1/press/energy_kwh, field: EnergyTotal, ts_field: Timestamp, unit: kWh}}
      - {{pattern: "{topic}", signal: l1/press/power_kw, field: ActivePower, ts_field: Timestamp, unit: W}}
derived:
  - {{signal: l1/press/produced, expr: "l1/press/good + l1/press/scrap"}}
"""

#: PackML StateCurrent -> the twin state the packml table reads, and the press's power then (W)
PACKML = {6: ("PRODUCING", 9000.0), 11: ("DOWN", 1500.0), 5: ("STARVED", 3000.0), 4: ("IDLE", 3000.0)}
#: twin state -> the press's power (W) the meter reads then
PACKML_POWER = dict(PACKML.values())
METER_DT = 0.5  # s between two meter readings


async def until(cond, what: str, timeout_s: float = 20.0) -> None:
    """Wait for ``cond()`` with a deadline (a condition, never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


async def at(t: float) -> None:
    """The plant's own clock: the next thing it does happens at wall time ``t``."""
    await asyncio.sleep(max(0.0, t - time.time()))


class Truth:
    """What the test told the plant, with times: the ground truth."""

    def __init__(self, t: float, state: int):
        self.states: list[tuple[float, str]] = [(t, PACKML[state][0])]

    def state_at(self, t: float) -> str:
        return [s for ts, s in self.states if ts <= t][-1]

    def time_in(self, t0: float, t1: float) -> dict[str, float]:
        out: dict[str, float] = {}
        marks = [(max(ts, t0), s) for ts, s in self.states if ts < t1]
        for (a, s), (b, _) in zip(marks, marks[1:] + [(t1, None)]):
            if b > a:
                out[s] = out.get(s, 0.0) + b - a
        return out


def test_thirdparty_plc_and_meter_through_a_mapping_match_the_ground_truth(mosquitto, tmp_path):
    config = tmp_path / "acme.yaml"
    config.write_text(FACTORY)
    factory = load_factory(config)
    port = free_port()
    plc = ThirdPartyPlc(port, {"PLC_1.Press.StateCurrent": 6, "PLC_1.Press.GoodCount": 65530,
                               "PLC_1.Press.ScrapCount": 10, "PLC_1.Oven.ActivePower": 7500.0})
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING.format(endpoint=plc.endpoint, ns="nsu=urn:acme-automation:press-line:plc-1",
                                           mqtt=mosquitto.url, topic=TOPIC))
    mapping = load_mapping(mapping_file, factory)
    store_path = tmp_path / "plant.sqlite"
    truth = Truth(time.time(), 6)
    box: dict = {}

    async def scenario() -> None:
        await plc.start()
        meter = ThirdPartyMeter(mosquitto.host, mosquitto.port, SHANGHAI)
        stop_meter = asyncio.Event()
        t_m0 = time.time() + 0.1

        async def meter_loop() -> None:
            energy, k = 1200.0, 0
            while not stop_meter.is_set():
                t = t_m0 + k * METER_DT
                await at(t)
                power = PACKML_POWER[truth.state_at(t)]
                # the first one retained: it arrives whenever the twin subscribes, and no later one
                # is published before the twin has it (none races the subscription)
                await asyncio.to_thread(meter.publish, energy, power, t, k == 0)
                if k == 0:
                    await until(lambda: meter_src.stats()["received"] >= 1, "the meter's first reading")
                energy += power * METER_DT / 3.6e6  # W x s -> kWh, constant until the next reading
                k += 1

        # the LiveRun API as `factory-twin run` uses it (twin/runtime/live.py, run_mapping)
        sources = build_sources(mapping, factory, tmp_path / "dead")
        meter_src = next(s for s in sources if s.name == "press-meter")
        twin = LiveTwin(factory, source_signals={s.name: s.signals for s in sources})
        stop = asyncio.Event()
        opts = LiveOptions(progress=False, stop=stop, sinks=Sinks(store=store_path), tick_s=0.2,
                           connect_timeout_s=15.0)
        meter_task = asyncio.create_task(meter_loop())
        t_run0 = time.time()
        async with LiveRun(factory, config, twin, sources, opts) as run:
            shadow = asyncio.create_task(run.shadow(asyncio.Event(), watch=True))
            plc_src = next(s for s in sources if s.name == "press-plc")

            def press(now=None):
                return twin.current_states(twin.frozen(now or time.time()))["l1/press"]

            def counted(t0: float) -> float:
                (st,) = [s for s in twin.report(t0, time.time()).stations if s.station == "press"]
                return st.produced

            await until(lambda: press() == "PRODUCING" and len(meter.sent) >= 3, "first values in the twin")
            t_a = time.time() + 0.3
            plant = [  # (offset from t_a, tag, value); the PLC stamps each at its planned time
                (0.2, "PLC_1.Press.GoodCount", 65531), (0.6, "PLC_1.Press.GoodCount", 65532),
                (1.0, "PLC_1.Press.GoodCount", 65533), (1.0, "PLC_1.Oven.ActivePower", 9000.0),
                (1.4, "PLC_1.Press.GoodCount", 65534), (1.8, "PLC_1.Press.GoodCount", 65535),
                (2.2, "PLC_1.Press.GoodCount", 0), (2.6, "PLC_1.Press.GoodCount", 1),  # 16-bit rollover
                (3.0, "PLC_1.Press.StateCurrent", 11), (3.0, "PLC_1.Oven.ActivePower", 2000.0),  # Held
                (4.5, "PLC_1.Press.StateCurrent", 6), (4.5, "PLC_1.Press.ScrapCount", 11),  # Execute
                (5.0, "PLC_1.Press.GoodCount", 2),
                (5.5, "restart", None),  # the PLC's OPC UA server goes away; the press runs on
                (6.0, "PLC_1.Press.GoodCount", 3), (6.5, "PLC_1.Press.ScrapCount", 12),
                (7.0, "PLC_1.Press.GoodCount", 4),
                (7.5, "start", None),
            ]
            for dt, tag, value in plant:
                t = t_a + dt
                await at(t)
                if tag == "restart":
                    box["down_at"] = t
                    await plc.stop()
                elif tag == "start":
                    await plc.start()
                    box["up_at"] = time.time()
                else:
                    if tag == "PLC_1.Press.StateCurrent":
                        truth.states.append((t, PACKML[value][0]))
                    await plc.set(tag, value, t)
            # 8 parts before the restart in the window, 3 during it (good 3, 4 and scrap 12)
            await until(lambda: plc_src.stats().get("connected") and counted(t_a) == 12,
                        "the restarted PLC's values in the twin")
            r = time.time()  # the twin has the PLC back
            after = [(0.5, "PLC_1.Press.StateCurrent", 5), (0.5, "PLC_1.Oven.ActivePower", 7500.0),  # Suspended
                     (1.0, "PLC_1.Press.GoodCount", 5), (2.0, "PLC_1.Press.StateCurrent", 4)]  # Idle
            for dt, tag, value in after:
                t = r + dt
                await at(t)
                if tag == "PLC_1.Press.StateCurrent":
                    truth.states.append((t, PACKML[value][0]))
                await plc.set(tag, value, t)
            t_b = r + 3.0
            await at(t_b + 2 * METER_DT)  # a meter reading after t_b, so the register is read through t_b
            await until(lambda: press() == "IDLE" and counted(t_a) == 13, "the last values in the twin")
            stop_meter.set()
            await meter_task
            await until(lambda: meter_src.stats()["received"] >= len(meter.sent), "every meter reading in the twin")
            stop.set()
            await shadow
            box["doc"] = await run.finish(t_run0, time.time())
        meter.close()
        await plc.stop()
        box.update(t_a=t_a, t_b=t_b, r=r, twin=twin, meter=meter.sent, plc_stats=plc_src.stats())

    asyncio.run(asyncio.wait_for(scenario(), 150))

    t_a, t_b, r, twin = box["t_a"], box["t_b"], box["r"], box["twin"]
    (press,) = [s for s in twin.report(t_a, t_b).stations if s.station == "press"]
    want = truth.time_in(t_a, t_b)
    # hand check of the plan: Execute 3.0 s, Held 1.5 s, Execute from 4.5 s to r + 0.5, Suspended 1.5 s, Idle 1 s
    assert want["DOWN"] == pytest.approx(1.5) and want["STARVED"] == pytest.approx(1.5)
    assert want["IDLE"] == pytest.approx(1.0) and want["PRODUCING"] == pytest.approx(r + 0.5 - t_a - 1.5)

    # state time elements, within the documented gap tolerance
    assert press.adet_s == pytest.approx(want["DOWN"], abs=0.05)
    assert press.adot_s == pytest.approx(want["STARVED"] + want["IDLE"], abs=0.05)
    assert press.apt_s + press.unknown_s == pytest.approx(want["PRODUCING"], abs=0.05)
    # the gap: from the lost connection to the restored state, at least the server's absence and at
    # most 5 s (the bound on samples flowing again) beyond it
    away = box["up_at"] - box["down_at"]
    assert away - 0.5 <= press.unknown_s <= away + 5.0
    # counts across the 16-bit rollover and the restart: good 65530 -> 65541 (11), scrap 10 -> 12
    assert (press.produced, press.good, press.scrap) == (13, 11, 2)
    # energy: the meter's register, linear between readings, from t_a to t_b
    assert press.energy_kwh == pytest.approx(register(box["meter"], t_b) - register(box["meter"], t_a), rel=1e-6)
    # the state after the restart: Execute again at once (the re-sent value), Idle at the end
    (after_restart,) = [s for s in twin.report(r, r + 0.5).stations if s.station == "press"]
    assert (after_restart.apt_s, after_restart.unknown_s) == (pytest.approx(0.5, abs=1e-6), 0.0)
    assert twin.current_states(twin.frozen(t_b))["l1/press"] == "IDLE"
    assert box["plc_stats"]["reconnects"] >= 1

    # into the store: the states, and power in kW from watts (PLC and meter)
    with Store(store_path) as store:
        states = store.signals("l1/press/state")
        assert states and states[-1]["state"] == "IDLE"
        oven = store.signals("l1/oven/power_kw")
        assert {max(r["max"] for r in oven), min(r["min"] for r in oven)} == {9.0, 2.0}
        meter_power = store.signals("l1/press/power_kw")
        assert max(r["max"] for r in meter_power) == 9.0 and min(r["min"] for r in meter_power) == 1.5
    doc = box["doc"]
    assert doc["samples"]["rejected_by_reason"].get("naive_timestamp", 0) == 0
    # the parts counted while the PLC was away (good 3 and 4, scrap 12) are set aside, and so is the
    # first part after the reconnect: its increment is read from the last count the PLC stamped inside
    # the gap (re-sent at the reconnect with that time), so the twin cannot place it in known time.
    # The rule errs on the side of setting aside, never of crediting unknown time to performance.
    assert press.produced_in_gap == 3 + 1


def register(sent: list[tuple[float, float, float]], t: float) -> float:
    """The meter's energy register at ``t``: linear between the two readings around it."""
    for (t0, e0, _), (t1, e1, _) in zip(sent, sent[1:]):
        if t0 <= t <= t1:
            return e0 + (e1 - e0) * (t - t0) / (t1 - t0)
    raise AssertionError(f"no meter readings around {t}")
