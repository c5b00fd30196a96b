"""The dashboard's state document built from a real live twin: the alarm text for rejected samples,
and the recent history that the page's chart draws at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_models import Quality, Sample, load_factory
from twin.dashboard.state import History, build_state, rejected_text
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts, parse_value

DATA = Path(__file__).parents[1] / "data"
FACTORY = load_factory(DATA / "worked_example.yaml")
T0 = parse_ts("2026-03-02T06:00:00Z")
FACTORS = {"location": 0.5703, "market": 0.6}


def worked_example_samples() -> list[Sample]:
    out = []
    for row in (DATA / "worked_example.csv").read_text().splitlines()[1:]:
        ts, signal, value, quality = row.split(",")
        out.append(Sample(signal, parse_value(value), parse_ts(ts), Quality(quality)))
    return out


def fed_twin(now: list[float]) -> LiveTwin:
    twin = LiveTwin(FACTORY, clock=lambda: now[0])
    at = now[0]
    for s in worked_example_samples():
        now[0] = s.ts  # each arrives as it happens: one far ahead of the twin's clock is clock_skew
        twin.add(s)
    now[0] = at
    return twin


def test_rejected_samples_alarm_is_written_in_words():
    now = [T0 + 3600]
    twin = fed_twin(now)
    samples = worked_example_samples()
    for s in samples[:4]:  # the same signal at the same timestamp again
        twin.add(s)
    doc = build_state(FACTORY, twin, twin.snapshot(), factors_kg_per_kwh=FACTORS)
    (alarm,) = [a for a in doc["alarms"] if a["kind"] == "rejected_samples"]
    assert alarm["text"] == "4 samples rejected: 4 duplicates"
    for i in range(10):
        twin.add(Sample("line1/no-such-station/state", "PRODUCING", T0 + i))
    doc = build_state(FACTORY, twin, twin.snapshot(), factors_kg_per_kwh=FACTORS)
    (alarm,) = [a for a in doc["alarms"] if a["kind"] == "rejected_samples"]
    assert alarm["text"] == "14 samples rejected: 10 unknown signals, 4 duplicates"
    assert "{" not in alarm["text"] and "_" not in alarm["text"]


@pytest.mark.parametrize(("total", "by_reason", "text"), [
    (1, {"nan": 1}, "1 sample rejected: 1 NaN or infinite value"),
    (3, {"bad_quality": 2, "unknown_product": 1}, "3 samples rejected: 2 marked bad by their source, 1 unknown product"),
    (5, {"some_new_reason": 5}, "5 samples rejected: 5 some new reason"),
    (2, {}, "2 samples rejected"),
])
def test_every_reason_has_readable_words(total, by_reason, text):
    assert rejected_text(total, by_reason) == text


def test_the_state_document_carries_one_history_point_per_tick():
    now = [T0]
    twin = fed_twin(now)
    docs = []
    for i in range(25):  # 08:00 to 08:48, across the counter reading of 08:20
        now[0] = T0 + 7200 + 120 * i
        docs.append(build_state(FACTORY, twin, twin.snapshot(), factors_kg_per_kwh=FACTORS))
    hist = docs[-1]["history"]
    assert hist["t"] == [T0 + 7200 + 120 * i for i in range(25)]
    assert len(hist["oee"]) == len(hist["power_kw"]) == len(hist["good"]) == 25
    # the newest point is the document's own figures
    assert hist["oee"][-1] == docs[-1]["site_kpi"]["oee"]
    assert hist["good"][-1] == docs[-1]["site_kpi"]["good"]
    assert hist["power_kw"][-1] == docs[-1]["energy"]["power_kw"]
    assert hist["good"] == sorted(hist["good"]) and hist["good"][-1] > hist["good"][0]
    # the same snapshot built again (the server asking before the first tick) adds no point
    again = build_state(FACTORY, twin, twin.snapshot(), factors_kg_per_kwh=FACTORS)
    assert again["history"]["t"] == hist["t"]
    # a caller may keep its own history instead of the twin's
    own = History()
    doc = build_state(FACTORY, twin, twin.snapshot(), factors_kg_per_kwh=FACTORS, history=own)
    assert doc["history"]["t"] == [now[0]] and len(own) == 1


def test_history_is_bounded_in_time_and_in_points():
    hist = History(span_s=3600, max_points=360)
    for i in range(4 * 7200):  # four hours of a real-time run ticking twice a second
        hist.add(T0 + 0.5 * i, oee=0.5, power_kw=100.0 + i, good=float(i))
    doc = hist.to_json()
    assert len(doc["t"]) <= 360
    assert doc["t"][-1] == T0 + 0.5 * (4 * 7200 - 1)  # the newest point is always the current one
    assert doc["power_kw"][-1] == 100.0 + 4 * 7200 - 1
    assert doc["t"][-1] - doc["t"][0] <= 3600
    assert doc["t"][-1] - doc["t"][0] >= 3600 - 20  # the whole hour is still covered
    steps = [b - a for a, b in zip(doc["t"], doc["t"][1:])]
    assert min(steps[:-1]) >= 10 - 0.5 and max(steps) <= 10 + 0.5
    # a clock that goes back (a new run on the same twin) starts the history again
    hist.add(T0, oee=None, power_kw=None, good=None)
    assert hist.to_json()["t"] == [T0]
