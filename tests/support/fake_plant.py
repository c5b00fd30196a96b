"""A stand-in plant for dashboard tests: a provider of the documented state document whose
figures change on every call (so a test can tell which call a response came from). Each call is
one tick of the plant: it adds a point to the document's history, as ``state.build_state`` does."""

from __future__ import annotations

from factory_models import KpiWindow
from factory_models.records import iso_utc
from twin.dashboard.state import History, rejected_text


def _kpi(site, line, station, k: int, *, apt, asut, adet, adot, produced, good, ideal_cycle_s, kwh) -> dict:
    w = KpiWindow(site=site, line=line, station=station, start=1767225600.0, end=1767225600.0 + 3600 + k)
    w.apt_s, w.asut_s, w.adet_s, w.adot_s = apt, asut, adet, adot
    w.pbt_s = w.pot_s = apt + asut + adet + adot
    w.produced, w.good, w.scrap = produced, good, produced - good
    w.availability = apt / w.pbt_s
    w.performance = ideal_cycle_s * produced / apt
    w.quality = good / produced
    w.oee = w.availability * w.performance * w.quality
    w.energy_kwh = kwh
    w.co2e_kg = kwh * 0.5703
    return w.to_json()


class FakePlant:
    """Produces state documents of the documented shape; call ``k`` shifts every figure a little."""

    STATES = ("PRODUCING", "SETUP", "DOWN", "STARVED", "BLOCKED", "IDLE", "UNKNOWN")
    #: the demo line's eight stations (configs/demo_smt.yaml): the width the page must fit
    STATIONS = ("printer", "spi", "placer-chip", "placer-fine", "reflow", "aoi", "ict", "pack")

    def __init__(self):
        self.calls = 0
        self.docs: dict[str, dict] = {}  # by "now": every document handed out
        self.down: set[str] = set()
        self.forced: list[tuple[str, float]] = []
        self.fail = False
        self.history = History()

    def __call__(self) -> dict:
        if self.fail:
            raise RuntimeError("the twin is gone")
        self.calls += 1
        k = self.calls
        t = 1767225600.0 + 3600 + 30 * k  # 30 s of plant time a tick, as the demo at 60x
        last = len(self.STATIONS) - 1
        stations = []
        for i, name in enumerate(self.STATIONS):
            state = "DOWN" if f"smt1/{name}" in self.down else self.STATES[(i + k) % len(self.STATES)]
            apt = 2000.0 + 37 * i + k
            stations.append({
                "station": name, "state": state,
                "buffer_after": (3 * i + k) % 11 if i < last else None,
                "buffer_capacity": 10 if i < last else None,
                "kpi": _kpi("suzhou-smt", "smt1", name, k, apt=apt, asut=300.0 + 11 * i, adet=120.0 + 17 * i + k % 7,
                            adot=400.0 - 23 * i, produced=100.0 + i + k, good=97.0 + i + k,
                            ideal_cycle_s=15.0 + i, kwh=3.0 + 0.7 * i + 0.01 * k),
                "power_kw": 1.5 + 0.75 * i + (0.1 * (k % 3)),
            })
        line_kpi = _kpi("suzhou-smt", "smt1", None, k, apt=2100.0 + k, asut=350.0, adet=180.0, adot=300.0,
                        produced=105.0 + k, good=101.0 + k, ideal_cycle_s=20.0, kwh=40.0 + 0.1 * k)
        site_kpi = _kpi("suzhou-smt", None, None, k, apt=2100.0 + k, asut=350.0, adet=180.0, adot=300.0,
                        produced=105.0 + k, good=101.0 + k, ideal_cycle_s=20.0, kwh=60.0 + 0.1 * k)
        doc = {
            "now": iso_utc(t),
            "site": "suzhou-smt",
            "shift": {"name": "day", "start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T12:00:00.000Z",
                      "plan_good": 1500, "forecast": {"expected_good": 1400.0 + k, "oee": 0.61 + k / 1e4,
                                                      "energy_kwh": 900.0 + k / 10}},
            "lines": [{"line": "smt1", "bottleneck": self.STATIONS[2 + k % 2], "stations": stations, "kpi": line_kpi}],
            "site_kpi": site_kpi,
            "energy": {"power_kw": 180.0 + k / 3, "shift_kwh": 950.0 + k / 7,
                       "co2e_rate_kg_per_h": {"location": 99.0 + k / 9, "market": 107.0 + k / 11},
                       "shift_co2e_kg": {"location": 520.0 + k / 13, "market": 560.0 + k / 17}},
            "alarms": [{"level": "error", "kind": "station_down", "text": f"smt1/{u} is down", "since": "2026-01-01T00:30:00.000Z"}
                       for u in sorted(self.down)] + [
                {"level": "warning", "kind": "rejected_samples",
                 "text": rejected_text(10 + k, {"duplicate": k, "unknown_signal": 10}), "since": "2026-01-01T00:10:00.000Z"},
                {"level": "warning", "kind": "stale", "text": "meters: no message for 12 s", "since": "2026-01-01T00:20:00.000Z"},
            ],
            "samples": {"received": 1000 + 3 * k, "used": 990 + 3 * k - k, "rejected": 10 + k,
                        "rejected_by_reason": {"duplicate": k, "unknown_signal": 10}},
            "connections": {"plc": "up", "meters": "down" if k % 2 else "up"},
        }
        self.history.add(t, oee=site_kpi["oee"], power_kw=doc["energy"]["power_kw"], good=site_kpi["good"])
        doc["history"] = self.history.to_json()
        self.docs[doc["now"]] = doc
        return doc

    def health(self) -> dict:
        return {"status": "ok", "connections": {"plc": "up", "meters": "up"},
                "spool": {"spool_depth": 42, "spool_bytes": 4200, "oldest_age_s": 1.5, "written": 1234, "dropped": 0},
                "samples": {"received": 5000, "used": 4990, "rejected": 10,
                            "rejected_by_reason": {"duplicate": 4, "nan": 6}}}

    def force_down(self, unit: str, seconds: float) -> dict:
        if unit not in {f"smt1/{s}" for s in self.STATIONS}:
            raise KeyError(f"unknown unit {unit!r}")
        if not seconds > 0:
            raise ValueError(f"force_down needs seconds > 0, got {seconds!r}")
        self.forced.append((unit, seconds))
        self.down.add(unit)
        return {"unit": unit, "seconds": seconds}
