"""A meter whose readings begin after the accounting period starts (its baseline is read at start)
or whose last reading is at most two reading intervals before it ends is gap-filled and counted,
but that is not a warning; readings missing between two others, or a meter gone silent, are."""

from __future__ import annotations

import logging

import numpy as np

from carbon.meters import GAP_FILLED, MeterSeries, intervals, series_from_cumulative


def meter(ts, readings):
    return series_from_cumulative("grid", "grid_import", "kWh", np.asarray(ts, float), np.asarray(readings, float))


def warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "carbon.meters"]


def test_readings_that_start_late_and_end_early_are_noted_not_warned(caplog):
    caplog.set_level(logging.INFO, logger="carbon.meters")
    iv = intervals(meter([10.0, 70.0, 130.0], [0.0, 1.0, 2.0]), 0.0, 140.0)
    assert iv.n_gaps == 2  # still counted as gap-filled in the data-quality block
    assert warnings(caplog) == []
    assert any("2 gap(s) totalling 20 s" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_a_meter_gone_silent_is_a_warning(caplog):
    caplog.set_level(logging.INFO, logger="carbon.meters")
    iv = intervals(meter([0.0, 60.0], [0.0, 1.0]), 0.0, 240.0)  # nothing for three reading intervals
    assert int(np.count_nonzero(iv.quality == GAP_FILLED)) >= 1
    (w,) = warnings(caplog)
    assert "gap-filled" in w.getMessage()


def test_readings_missing_between_two_others_are_a_warning(caplog):
    caplog.set_level(logging.INFO, logger="carbon.meters")
    series = MeterSeries("grid", "grid_import", "kWh", np.array([0.0, 120.0]), np.array([60.0, 180.0]),
                         np.array([1.0, 1.0]))
    iv = intervals(series, 0.0, 180.0)
    assert iv.n_gaps == 1
    (w,) = warnings(caplog)
    assert "1 gap(s) totalling 60 s" in w.getMessage()
