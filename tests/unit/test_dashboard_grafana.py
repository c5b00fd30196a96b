"""The Grafana files in configs/grafana/ ask for what the InfluxDB writer really writes.

No Grafana runs here; the queries are checked against the line protocol of the real writer
(``connectors.influxdb.lineprotocol``): every measurement, tag and field a panel filters on must be
one the writer produces, or the panel would be silently empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import yaml

from connectors.influxdb.lineprotocol import SignalLines, emissions_line, kpi_line
from factory_models import EmissionsRecord, KpiWindow, Sample

GRAFANA = Path(__file__).resolve().parents[2] / "configs" / "grafana"


def _dashboard() -> dict:
    return json.loads((GRAFANA / "factory-twin-dashboard.json").read_text())


def _queries(dash: dict) -> list[str]:
    return [t["query"] for p in dash["panels"] for t in p["targets"]]


def _written() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (tag keys, field keys), parsed from lines the writer builds."""
    w = KpiWindow(site="s", line="l", station="st", start=0.0, end=60.0, pbt_s=60.0, apt_s=50.0, asut_s=5.0,
                  adet_s=3.0, adot_s=2.0, unknown_s=0.0, produced=10, good=9, scrap=1, availability=0.8,
                  performance=0.9, quality=0.9, oee=0.648, nee=0.6, mtbf_s=50.0, mttr_s=3.0, energy_kwh=1.0,
                  kwh_per_good=0.11, co2e_kg=0.5)
    e = EmissionsRecord(site="s", scope="2", source="grid", method="location", start=0.0, end=60.0, activity=1.0,
                        activity_unit="kWh", co2e_kg=0.5, co2_kg=0.5, factor_id="f", factor_version="1", gwp_set="AR5")
    sig = SignalLines()
    lines = [kpi_line(w), emissions_line(e)]
    for s in (Sample("l/st/state", "DOWN", 1.0), Sample("l/st/power_kw", 2.5, 1.0), Sample("site/grid/power_kw", 9.0, 1.0)):
        lines.append(sig.line("s", s))
    out: dict[str, tuple[set[str], set[str]]] = {}
    for line in lines:
        series, field_set, _ = line.split(" ")
        measurement, *tags = series.split(",")
        keys = {t.split("=")[0] for t in tags}
        fields_ = {f.split("=")[0] for f in field_set.split(",")}
        tk, fk = out.setdefault(measurement, (set(), set()))
        tk.update(keys)
        fk.update(fields_)
    return out


def test_datasource_provisioning_matches_the_dashboard():
    doc = yaml.safe_load((GRAFANA / "datasource.yaml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]  # the SQL one is a commented alternative
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "Flux"
    assert ds["secureJsonData"]["token"] == "$INFLUX_TOKEN"  # from Grafana's environment, never a literal
    dash = _dashboard()
    uids = {p["datasource"]["uid"] for p in dash["panels"]} | {t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]}
    assert uids == {ds["uid"]}
    bucket = [v for v in dash["templating"]["list"] if v["name"] == "bucket"][0]
    assert bucket["query"] == ds["jsonData"]["defaultBucket"]
    provider = yaml.safe_load((GRAFANA / "dashboards.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_panels_are_well_formed():
    dash = _dashboard()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    variables = {v["name"] for v in dash["templating"]["list"]}
    for q in _queries(dash) + [v.get("query", "") for v in dash["templating"]["list"]]:
        assert q.count("(") == q.count(")") and q.count("{") == q.count("}") and q.count('"') % 2 == 0, q
        for name in re.findall(r"\$\{(\w+)(?::\w+)?\}", q):
            assert name in variables, (name, q)
    types = {p["type"] for p in dash["panels"]}
    assert {"state-timeline", "timeseries", "barchart", "stat", "bargauge"} <= types
    # the state colours are the dashboard's: every state of docs/kpis.md is mapped
    timeline = [p for p in dash["panels"] if p["type"] == "state-timeline"][0]
    mapped = set(timeline["fieldConfig"]["defaults"]["mappings"][0]["options"])
    from factory_models import State

    assert mapped == {s.name for s in State}


def test_queries_ask_for_what_the_writer_writes():
    written = _written()
    kpi_fields = {f.name for f in fields(KpiWindow)} - {"site", "line", "station", "start", "end", "flags"}
    assert kpi_fields <= written["station_kpi"][1]  # the writer's fields, as the README says
    for q in _queries(_dashboard()):
        measurements = set(re.findall(r'r\._measurement == "(\w+)"', q))
        assert measurements and measurements <= set(written), q
        tags = set().union(*(written[m][0] for m in measurements))
        fields_ = set().union(*(written[m][1] for m in measurements))
        for tag in re.findall(r"\br\.(\w+)\b", q):
            if tag.startswith("_"):
                continue
            assert tag in tags, (tag, q)
        for field in re.findall(r'r\._field == "(\w+)"', q):
            assert field in fields_, (field, q)
        for signal in re.findall(r'r\.signal == "(\w+)"', q):
            assert signal in {"state", "power_kw"}, (signal, q)
        for col in re.findall(r'"(\w+_s)"', q):  # pivoted time elements
            assert col in fields_, (col, q)
