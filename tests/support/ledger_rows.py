"""Hourly emissions ledger rows built by hand, for report tests: every figure is set by the test."""

from __future__ import annotations

from factory_models.records import EmissionsRecord


def hours_of(site, source, scope, method, unit, start, n, activity, kg_per_unit, *, origin="measured",
             factor_id="f", estimated=(), readings=6, gwp_set="ar5"):
    """``n`` consecutive hourly records of one source from ``start``; ``activity`` a number or a list.
    Hours whose index is in ``estimated`` are marked estimated (all of their activity)."""
    out = []
    for i in range(n):
        a = activity[i] if isinstance(activity, (list, tuple)) else activity
        t = start + 3600.0 * i
        est = i in estimated
        out.append(EmissionsRecord(
            site=site, scope=scope, source=source, method=method, start=t, end=t + 3600.0, activity=a,
            activity_unit=unit, co2e_kg=a * kg_per_unit, co2_kg=a * kg_per_unit, factor_id=factor_id,
            factor_version="test", gwp_set=gwp_set, data_quality="estimated" if est else "measured",
            origin=origin, estimated_activity=a if est else 0.0, readings=0 if est else readings,
            first_reading=None if est else t + 60.0, last_reading=None if est else t + 3540.0))
    return out
