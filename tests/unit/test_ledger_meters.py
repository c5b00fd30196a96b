"""Meters as they are (issue 11): counter readings to activity per clock hour of the site, with
resets, replaced meters, rollovers, gaps and bad readings, every figure worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from carbon import hour_edges, hourly_activity, site_day_bounds, site_time
from carbon.hours import hour_floor

H = 3600.0
JAN = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
FEB = datetime(2026, 2, 1, tzinfo=UTC).timestamp()


def grid(ts, values, edges, **kw):
    return hourly_activity("grid", "grid_import", "kWh", ts, values, edges, **kw)


def test_a_meter_replaced_mid_month_counts_every_segment():
    """Hourly readings through January. The old meter reads 52,000 on 1 January and gains 100 kWh an
    hour until 15 January 10:00 (86,600 kWh); at 11:00 the new meter reads 12 (its own count since it
    was fitted), then gains 100 an hour to 1 February. The month: 34,600 + 12 + 39,700 = 74,312 kWh."""
    ts = JAN + H * np.arange(745)
    swap = 14 * 24 + 10  # reading index of 15 January 10:00
    old = 52_000.0 + 100.0 * np.arange(swap + 1)
    new = 12.0 + 100.0 * np.arange(745 - swap - 1)
    assert old[-1] == 86_600.0 and new[-1] == 39_712.0
    a = grid(ts, np.concatenate((old, new)), hour_edges(JAN, FEB))
    assert len(a.activity) == 744
    assert a.activity.sum() == pytest.approx(74_312.0, rel=1e-12)
    assert a.activity[swap] == pytest.approx(12.0)  # the hour of the swap: only what the new meter counted
    assert a.activity[swap - 1] == a.activity[swap + 1] == pytest.approx(100.0)
    assert a.resets[swap] == 1 and a.resets.sum() == 1  # counted in the hour the drop happened in
    assert a.estimated.sum() == 0.0
    stats = a.stats()
    assert (stats["readings_used"], stats["resets"], stats["estimated_hours"], stats["hours"]) == (745, 1, 0, 744)


def test_a_counter_reset_is_the_new_count_never_negative_energy():
    """500, 600, then 40 (the register restarted at 0): 100 kWh in the first hour, 40 in the second."""
    a = grid([JAN, JAN + H, JAN + 2 * H], [500.0, 600.0, 40.0], hour_edges(JAN, JAN + 2 * H))
    assert list(a.activity) == [100.0, 40.0]
    assert list(a.resets) == [0, 1]
    assert (a.activity >= 0).all()


def test_a_configured_rollover_wraps_instead_of_resetting():
    """A five-digit register (maximum 99,999): 99,950, 99,990, 30, 70. The wrap is 99,999 + 1 - 99,990 + 30 = 40."""
    ts = [JAN, JAN + H, JAN + 2 * H, JAN + 3 * H]
    values = [99_950.0, 99_990.0, 30.0, 70.0]
    a = grid(ts, values, hour_edges(JAN, JAN + 3 * H), rollover=99_999)
    assert list(a.activity) == [40.0, 40.0, 40.0]
    assert a.resets.sum() == 0 and a.rollovers == 1
    # without the rollover configured the same drop is a reset: only the 30 after it is counted
    b = grid(ts, values, hour_edges(JAN, JAN + 3 * H))
    assert list(b.activity) == [40.0, 30.0, 40.0] and b.resets.sum() == 1
    # a small drop is no wrap even with a rollover: a reset (more than half the range must be crossed)
    c = grid([JAN, JAN + H], [30_000.0, 5.0], hour_edges(JAN, JAN + H), rollover=99_999)
    assert list(c.activity) == [5.0] and c.resets.sum() == 1


def test_a_two_day_gap_is_spread_over_its_hours_and_marked_estimated():
    """Readings every 15 minutes, 25 kWh each (100 kWh an hour), none from 2 January 00:00 to
    4 January 00:00: the 4,800 kWh between those two readings go evenly over the 48 hours, estimated."""
    before = JAN + 900.0 * np.arange(97)  # 1 January, to 2 January 00:00 inclusive
    after = JAN + 3 * 86400 + 900.0 * np.arange(97)  # 4 January 00:00 to 5 January 00:00
    ts = np.concatenate((before, after))
    values = 25.0 * np.concatenate((np.arange(97), 96 + 192 + np.arange(97)))
    a = grid(ts, values, hour_edges(JAN, JAN + 4 * 86400))
    assert len(a.activity) == 96
    assert a.activity == pytest.approx(np.full(96, 100.0))
    gap = slice(24, 72)
    assert a.estimated[gap] == pytest.approx(np.full(48, 100.0))
    assert a.estimated[:24].sum() == 0 and a.estimated[72:].sum() == 0
    assert a.stats()["estimated_hours"] == 48
    assert a.readings[24] == 1 and a.readings[25:72].sum() == 0  # only 2 January 00:00 lies in the gap
    assert np.isnan(a.first_reading[30]) and a.first_reading[24] == a.last_reading[24] == JAN + 86400


def test_nothing_is_extrapolated_before_the_first_or_after_the_last_reading():
    a = grid([JAN + 1800, JAN + 5400], [0.0, 10.0], hour_edges(JAN, JAN + 3 * H))
    assert list(a.activity) == [5.0, 5.0, 0.0]
    assert list(a.has_data) == [True, True, False]
    assert a.covered_s[0] == 1800.0


def test_a_span_keeps_the_activity_inside_it_and_places_crossing_intervals():
    """Readings on the half hour; the span [01:00, 02:00) takes half of each interval that crosses it."""
    ts = JAN + 1800 + H * np.arange(4)
    a = grid(ts, [0.0, 10.0, 30.0, 60.0], hour_edges(JAN + H, JAN + 2 * H), span=(JAN + H, JAN + 2 * H))
    assert list(a.activity) == [5.0 + 10.0]


def test_bad_readings_are_rejected_by_name_and_counted():
    ts = [JAN, JAN + 600, JAN + 1200, JAN + 900, JAN + 1800, JAN + 1800, JAN + 2400, JAN + 3000, JAN + 3600]
    values = [0.0, 10.0, float("nan"), 25.0, 30.0, 31.0, -4.0, 28.0, 60.0]
    # NaN at 1200; 900 comes after 1200's time was taken? no: NaN is rejected first, so 900 follows 600;
    # 1800 twice (the second is repeated_time); -4 negative; 28 at 3000 dips below 30 while 60 carries on
    a = grid(ts, values, hour_edges(JAN, JAN + H))
    assert a.rejected == {"not_finite": 1, "negative": 1, "above_rollover": 0, "back_in_time": 0,
                          "repeated_time": 1, "dip": 1}
    assert list(a.activity) == [60.0] and a.resets.sum() == 0
    late = grid([JAN, JAN + 1200, JAN + 600, JAN + 3600], [0.0, 20.0, 10.0, 60.0], hour_edges(JAN, JAN + H))
    assert late.rejected["back_in_time"] == 1 and list(late.activity) == [60.0]
    # a five-digit register cannot read 123,456: rejected, the rest still counts
    wrap = grid([JAN, JAN + 1800, JAN + H], [99_000.0, 123_456.0, 99_500.0], hour_edges(JAN, JAN + H), rollover=99_999)
    assert wrap.rejected["above_rollover"] == 1 and list(wrap.activity) == [500.0]


def test_site_hours_and_days_in_asia_shanghai():
    # Shanghai is UTC+8 all year: its days start at 16:00 UTC of the day before, its hours on UTC hours
    t0, t1 = site_day_bounds(date(2026, 1, 2), "Asia/Shanghai")
    assert (t0, t1) == (JAN + 16 * H, JAN + 40 * H)
    assert site_time("2026-01-01", "Asia/Shanghai") == JAN - 8 * H
    assert site_time("2026-01-01T00:00:00Z", "Asia/Shanghai") == JAN
    edges = hour_edges(t0 + 100.0, t1 - 100.0, "Asia/Shanghai")
    assert edges[0] == t0 and edges[-1] == t1 and len(edges) == 25
    # Kolkata is UTC+5:30: its clock hours start at half past the UTC hour
    k = hour_edges(JAN, JAN + 2 * H, "Asia/Kolkata")
    assert list(k - JAN) == [-1800.0, 1800.0, 5400.0, 9000.0]
    assert hour_floor(JAN + 1799.0, "Asia/Kolkata") == JAN - 1800.0


def test_hours_across_a_summer_time_change_stay_on_the_local_hour():
    # Europe/Berlin, 29 March 2026: 02:00 local becomes 03:00 (01:00 UTC); the local day has 23 hours
    t0, t1 = site_day_bounds(date(2026, 3, 29), "Europe/Berlin")
    assert t1 - t0 == 23 * H
    edges = hour_edges(t0, t1, "Europe/Berlin")
    assert len(edges) == 24 and np.all(np.diff(edges) == H)
