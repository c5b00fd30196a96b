"""connectors/transform.py: the one rule set every source applies to a raw reading."""

from __future__ import annotations

import math

import pytest

from connectors.transform import (
    DEADBAND,
    DUPLICATE,
    Deadband,
    Rejected,
    Rules,
    Transform,
    template_signals,
    to_sample,
)
from factory_models import Quality, Sample, TsKind
from factory_models.signals import known_signals

from support.factories import small_factory

GOOD, UNCERTAIN, BAD = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD
POWER = "line1/printer/power_kw"
STATE = "line1/printer/state"
PRODUCT = "line1/printer/product"


def one(signal: str, raw, quality=GOOD, source_ts=None, server_ts=None, receive_ts=100.0, **rules):
    return to_sample(Rules(signal, Transform(**rules)), raw, quality, source_ts, server_ts, receive_ts, Deadband())


def test_number_is_scaled_and_timed_by_the_policy():
    out = one(POWER, 2500, source_ts=1.0, server_ts=2.0, scale=0.001, offset=-1)
    assert out == Sample(POWER, 1.5, 1.0, GOOD, TsKind.SOURCE)
    assert one(POWER, 2.0, source_ts=1.0, server_ts=2.0, timestamp="server")[2:] == (2.0, GOOD, TsKind.SERVER)
    assert one(POWER, 2.0, source_ts=1.0, timestamp="receive")[2:] == (100.0, GOOD, TsKind.RECEIVE)


@pytest.mark.parametrize("raw, value", [("12.5", 12.5), (True, None), ("abc", None), ([1], None)])
def test_numeric_text_is_a_number_other_types_are_wrong_type(raw, value):
    out = one(POWER, raw)
    if value is None:
        assert type(out) is Rejected and out.reason == "wrong_type"
    else:
        assert out.value == value


def test_values_that_are_not_finite_are_rejected_unless_bad():
    assert one(POWER, float("nan")).reason == "not_finite"
    assert one(POWER, 10**400).reason == "not_finite"  # an integer beyond float range
    assert one(POWER, 1e308, scale=10).reason == "not_finite"  # finite raw, infinite after scaling
    for raw in (None, float("inf"), "junk"):
        out = one(POWER, raw, quality=BAD)
        assert type(out) is Sample and math.isnan(out.value) and out.quality is BAD


def test_states_take_names_or_codes_and_bad_ones_are_named():
    assert one(STATE, "down").value == "DOWN"
    assert one(STATE, 0).value == "PRODUCING"
    assert one(STATE, "EXPLODED").reason == "bad_state"
    assert one(STATE, None).reason == "wrong_type"
    assert one(STATE, None, quality=BAD).value == "UNKNOWN"
    assert one(STATE, "EXPLODED", quality=BAD).value == "UNKNOWN"


def test_product_is_text_or_an_integer_code():
    assert one(PRODUCT, "pcb-a").value == "pcb-a"
    assert one(PRODUCT, 5).value == "5"
    assert one(PRODUCT, 5.5).reason == "wrong_type"
    assert one(PRODUCT, True).reason == "wrong_type"
    assert one(PRODUCT, None, quality=BAD).value == ""


def test_deadband_holds_back_only_good_values():
    rules, db = Rules(POWER, Transform(deadband=0.5)), Deadband()
    kept = [to_sample(rules, v, q, None, None, 1.0, db) for v, q in
            [(10.0, GOOD), (10.2, GOOD), (10.3, UNCERTAIN), (10.4, BAD), (10.6, GOOD)]]
    assert [o if o is DEADBAND else o.value for o in kept] == [10.0, DEADBAND, 10.3, 10.4, 10.6]
    db.forget()  # a reconnect: the next value passes whatever it is
    assert type(to_sample(rules, 10.6, GOOD, None, None, 1.0, db)) is Sample


def test_redelivery_of_the_last_reading_is_a_duplicate_even_after_a_reconnect():
    rules, db, seen = Rules(POWER, Transform()), Deadband(), {}
    assert type(to_sample(rules, 3.0, GOOD, 5.0, None, 9.0, db, seen)) is Sample
    db.forget()
    assert to_sample(rules, 3.0, GOOD, 5.0, None, 9.0, db, seen, redelivered=True) is DUPLICATE
    # the same reading not flagged as redelivered is a heartbeat, and a redelivery of another is news
    assert type(to_sample(rules, 3.0, GOOD, 5.0, None, 9.0, db, seen)) is Sample
    assert type(to_sample(rules, 3.0, GOOD, 6.0, None, 9.0, db, seen, redelivered=True)) is Sample


def test_template_signals_leave_meters_out_on_request():
    known = known_signals(small_factory())
    assert template_signals("{line}/{station}/state", "suzhou-smt", known) == {
        "line1/printer/state", "line1/cnc-1/state", "line1/cnc-2/state"}
    every = template_signals("{line}/{station}/{signal}", "suzhou-smt", known)
    assert "site/grid/power_kw" in every
    assert not {s for s in template_signals("{line}/{station}/{signal}", "suzhou-smt", known, meters=False)
                if s.startswith("site/")}
    assert template_signals("site/{station}/power_kw", "suzhou-smt", known, meters=False) == {"site/grid/power_kw"}
