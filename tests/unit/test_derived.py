"""derived: arithmetic over signals of one station, parsed safely, recomputed on each input."""

from __future__ import annotations

import asyncio
import math

import pytest

from connectors.derived import DerivedEngine, DerivedQueue, DerivedSignal, DerivedSource, parse_expr, with_derived
from connectors.mapping import load_mapping
from factory_models import ConfigError, Quality, Sample, TsKind

from support.factories import small_factory

GOOD_ = "line1/printer/good"
SCRAP = "line1/printer/scrap"
PRODUCED = "line1/printer/produced"


def test_expressions_compile_to_arithmetic_over_named_signals():
    e = parse_expr("line1/printer/good + line1/printer/scrap")
    assert e.inputs == (GOOD_, SCRAP) and e.evaluate([40.0, 2.0]) == 42.0
    # names with '-' and '.', a dividing '/' with spaces, precedence and unary minus
    e = parse_expr("(line1/cnc-1/energy_kwh - 2.5) / 2 * -line1/cnc-2/power_kw")
    assert e.inputs == ("line1/cnc-1/energy_kwh", "line1/cnc-2/power_kw")
    assert e.evaluate([12.5, 3.0]) == -15.0  # (12.5 - 2.5) / 2 * -3
    with pytest.raises(ZeroDivisionError):
        parse_expr("line1/printer/good / line1/printer/scrap").evaluate([1.0, 0.0])


@pytest.mark.parametrize("text, why", [
    ("__import__('os').system('true')", "not __import__|not Call|not a signal"),
    ("line1/printer/good ** 2", "not Pow"),
    ("line1/printer/good if 1 else 2", "not IfExp"),
    ("(lambda: 1)()", "not Call"),
    ("abs(line1/printer/good)", "not Call"),
    ("line1/printer/good[0]", "not Subscript"),
    ("good + scrap", "'good' is not a signal"),
    ("2 + 3", "names no signal"),
    ("line1/printer/good +", "not an arithmetic expression"),
    ("'text' + line1/printer/good", "not Constant"),
])
def test_anything_but_arithmetic_is_refused_at_load(text, why):
    with pytest.raises(ValueError, match=why):
        parse_expr(text)


def engine(*defs: tuple[str, str]) -> DerivedEngine:
    return DerivedEngine([DerivedSignal(signal=s, expr=e) for s, e in defs])


def test_recomputed_on_each_input_with_the_latest_time_once_all_inputs_are_known():
    eng = engine((PRODUCED, f"{GOOD_} + {SCRAP}"))
    assert eng.on_sample(Sample(GOOD_, 40.0, 100.0)) == ([], [])  # scrap not known yet
    out, rejected = eng.on_sample(Sample(SCRAP, 2.0, 101.0, ts_kind=TsKind.SERVER))
    assert out == [Sample(PRODUCED, 42.0, 101.0, Quality.GOOD, TsKind.SERVER)] and rejected == []
    out, _ = eng.on_sample(Sample(GOOD_, 41.0, 105.0, Quality.UNCERTAIN))
    assert out == [Sample(PRODUCED, 43.0, 105.0, Quality.UNCERTAIN, TsKind.SOURCE)]  # worst quality
    # a late reading of an input (older than its latest) changes nothing
    assert eng.on_sample(Sample(GOOD_, 39.0, 103.0)) == ([], [])


def test_two_inputs_of_one_scan_give_the_complete_value_a_microsecond_later():
    eng = engine((PRODUCED, f"{GOOD_} + {SCRAP}"))
    eng.on_sample(Sample(GOOD_, 40.0, 100.0))
    eng.on_sample(Sample(SCRAP, 2.0, 100.0))
    first, _ = eng.on_sample(Sample(GOOD_, 45.0, 200.0))   # good and scrap both changed at t=200:
    second, _ = eng.on_sample(Sample(SCRAP, 3.0, 200.0))   # the twin keeps one Sample per (signal, ts)
    assert [(s.value, s.ts) for s in first + second] == [(47.0, 200.0), (48.0, pytest.approx(200.000001))]
    # the same value at the same instant again is nothing new
    assert eng.on_sample(Sample(SCRAP, 3.0, 200.0)) == ([], [])


def test_division_by_zero_is_a_counted_rejection_and_a_bad_input_gives_a_bad_nan():
    rate = "line1/printer/power_kw"
    eng = engine((rate, f"{GOOD_} / {SCRAP}"))
    eng.on_sample(Sample(GOOD_, 10.0, 1.0))
    out, rejected = eng.on_sample(Sample(SCRAP, 0.0, 2.0))
    assert out == [] and [r for r, _ in rejected] == ["division_by_zero"]
    out, _ = eng.on_sample(Sample(SCRAP, 4.0, 3.0))
    assert out[0].value == 2.5
    out, _ = eng.on_sample(Sample(SCRAP, math.nan, 4.0, Quality.BAD))
    assert out[0].quality is Quality.BAD and math.isnan(out[0].value)


def test_the_queue_adds_derived_samples_and_puts_all_or_nothing():
    async def go():
        q: asyncio.Queue = asyncio.Queue(maxsize=3)
        rejected: list[str] = []
        counted = []
        dq = DerivedQueue(q, engine((PRODUCED, f"{GOOD_} + {SCRAP}")), lambda r, d: rejected.append(r), counted.append)
        dq.put_nowait(Sample(GOOD_, 1.0, 1.0))
        dq.put_nowait(Sample(SCRAP, 1.0, 2.0))  # + produced = 2 at t=2
        assert [s.signal for s in (q.get_nowait(), q.get_nowait(), q.get_nowait())] == [GOOD_, SCRAP, PRODUCED]
        q.put_nowait(Sample("line1/printer/state", "IDLE", 3.0))
        q.put_nowait(Sample("line1/printer/state", "IDLE", 4.0))
        with pytest.raises(asyncio.QueueFull):  # room for the input, not for what it derives
            dq.put_nowait(Sample(GOOD_, 5.0, 5.0))
        assert q.qsize() == 2  # nothing half-put: a source that retries sends the input once
        q.get_nowait(), q.get_nowait()
        await dq.put(Sample(GOOD_, 5.0, 5.0))
        assert [q.get_nowait().value for _ in range(2)] == [5.0, 6.0]
        assert counted == [1, 1] and rejected == []

    asyncio.run(go())


class _Inner:
    """A source that puts fixed samples, the way a client does (stats, signals, config)."""

    name = "plc"
    config = "opc.tcp://example"

    def __init__(self, samples):
        self._samples = samples

    async def run(self, out):
        for s in self._samples:
            out.put_nowait(s)

    def stats(self):
        return {"received": len(self._samples), "rejected": 0, "rejected_by_reason": {}}

    def signals(self):
        return {GOOD_, SCRAP}


def test_wrapped_sources_share_one_engine_and_count_what_they_derive():
    derived = [DerivedSignal(signal=PRODUCED, expr=f"{GOOD_} + {SCRAP} / 0")]
    assert with_derived([_Inner([])], []) != [] and isinstance(with_derived([_Inner([])], [])[0], _Inner)
    [src] = with_derived([_Inner([Sample(GOOD_, 1.0, 1.0), Sample(SCRAP, 1.0, 2.0)])], derived)
    assert isinstance(src, DerivedSource) and src.config == "opc.tcp://example" and PRODUCED in src.signals()
    q: asyncio.Queue = asyncio.Queue()
    asyncio.run(src.run(q))
    st = src.stats()
    assert q.qsize() == 2 and st["rejected_by_reason"] == {"division_by_zero": 1} and st["rejected"] == 1


def write(tmp_path, derived: str):
    p = tmp_path / "mapping.yaml"
    p.write_text("site: suzhou-smt\nmqtt:\n  - name: meters\n    topics:\n"
                 "      - {pattern: 'a/{station}/good', signal: 'line1/{station}/good'}\n"
                 "      - {pattern: 'a/printer/produced', signal: line1/printer/produced}\n"
                 f"derived:\n{derived}", encoding="utf-8")
    return p


def test_a_mapping_with_derived_signals_loads(tmp_path):
    m = load_mapping(write(tmp_path, "  - {signal: line1/cnc-1/produced, expr: 'line1/cnc-1/good + line1/cnc-1/scrap'}\n"),
                     small_factory())
    assert m.derived[0].inputs == ("line1/cnc-1/good", "line1/cnc-1/scrap")


@pytest.mark.parametrize("entry, where, why", [
    ("{signal: line1/cnc-1/produced, expr: 'line1/cnc-1/good + line1/cnc-1/scarp'}", "derived[0].expr",
     "unknown signal 'line1/cnc-1/scarp'"),
    ("{signal: line1/cnc-1/produced, expr: 'line1/cnc-1/good + line1/cnc-2/scrap'}", "derived[0].expr",
     "line1/cnc-2/scrap is not a signal of line1/cnc-1"),
    ("{signal: line1/cnc-1/state, expr: 'line1/cnc-1/good'}", "derived[0].signal", "is text"),
    ("{signal: line1/printer/produced, expr: 'line1/printer/good + line1/printer/scrap'}", "derived[0].signal",
     "also fed by a mapping entry"),
    ("{signal: line1/cnc-1/produced, expr: 'line1/cnc-1/good ** 2'}", "derived[0].expr", "not Pow"),
])
def test_bad_derived_entries_are_config_errors_with_file_line_and_entry(tmp_path, entry, where, why):
    path = write(tmp_path, f"  - {entry}\n")
    with pytest.raises(ConfigError) as err:
        load_mapping(path, small_factory())
    msg = str(err.value)
    assert str(path) in msg and f"line 8: {where}" in msg and why in msg
