"""Line protocol: escaping, tag order, typing and timestamps, checked by parsing the lines back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.influxdb.lineprotocol import (
    LineProtocolError,
    SignalLines,
    build_lines,
    emissions_line,
    kpi_line,
    timestamp,
)
from factory_models.records import EmissionsRecord, KpiWindow, Quality, Sample


def _split_unescaped(text: str, sep: str, quotes: bool = True, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` where it is neither escaped nor (with ``quotes``) inside a quoted string."""
    parts, cur, i, quoted = [], [], 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == '"' and quotes:
            quoted = not quoted
        if c == sep and not quoted and maxsplit != 0:
            maxsplit -= 1
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ',= "\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse(line: str) -> tuple[str, list[tuple[str, str]], dict, int]:
    """An independent reader of one line: measurement, tags in written order, typed fields, time."""
    # Quotes mean nothing in the series key (a tag value may hold one); they do in the fields.
    series, rest = _split_unescaped(line, " ", quotes=False, maxsplit=1)
    fields_text, ts = _split_unescaped(rest, " ")
    head, *tag_texts = _split_unescaped(series, ",", quotes=False)
    tags = []
    for t in tag_texts:
        k, v = _split_unescaped(t, "=", quotes=False)
        tags.append((_unescape(k), _unescape(v)))
    fields = {}
    for f in _split_unescaped(fields_text, ","):
        k, v = _split_unescaped(f, "=")
        if v.startswith('"'):
            fields[_unescape(k)] = _unescape(v[1:-1])
        elif v.endswith("i"):
            fields[_unescape(k)] = ("int", int(v[:-1]))
        else:
            fields[_unescape(k)] = float(v)
    return _unescape(head), tags, fields, int(ts)


def test_signal_line_escapes_tags_and_sorts_them():
    line = SignalLines("ms").line("plant a,b=c", Sample("line 1/re,flow/state=x", "PRODUCING", 1700000000.1234))
    assert line == (
        r"signal,line=line\ 1,signal=state\=x,site=plant\ a\,b\=c,station=re\,flow "
        'state="PRODUCING",quality="good" 1700000000123'
    )
    m, tags, fields, ts = parse(line)
    assert m == "signal"
    assert tags == [("line", "line 1"), ("signal", "state=x"), ("site", "plant a,b=c"), ("station", "re,flow")]
    assert fields == {"state": "PRODUCING", "quality": "good"}
    assert ts == 1700000000123


def test_numeric_values_are_always_floats():
    lines = SignalLines("ms")
    for v in (12, 12.0, True, 0, -3):
        _, _, fields, _ = parse(lines.line("s", Sample("site/grid/energy_kwh", v, 1.0, Quality.BAD)))
        assert fields == {"value": float(v), "quality": "bad"}
        assert "i" not in lines.line("s", Sample("site/grid/energy_kwh", v, 1.0)).split(" ")[1].split(",")[0]


def test_string_fields_escape_quotes_and_backslashes():
    line = SignalLines().line("s", Sample("l/st/product", 'say "hi" \\ ok', 0.0))
    assert 'state="say \\"hi\\" \\\\ ok"' in line
    assert parse(line)[2]["state"] == 'say "hi" \\ ok'


@pytest.mark.parametrize(
    "sample",
    [
        Sample("l/st/power_kw", float("nan"), 1.0),
        Sample("l/st/power_kw", float("inf"), 1.0),
        Sample("nostation", 1.0, 1.0),
        Sample("l//x", 1.0, 1.0),
        Sample("l/st/state", "two\nlines", 1.0),
        Sample("l/st/x", 1.0, float("nan")),
    ],
)
def test_unwritable_samples_are_refused_with_a_reason(sample):
    with pytest.raises(LineProtocolError):
        SignalLines().line("s", sample)


def test_build_lines_keeps_good_lines_and_reports_bad_ones():
    lines = SignalLines()
    good = Sample("l/st/x", 1.5, 10.0)
    bad = Sample("l/st/x", float("nan"), 11.0)
    out, rejected = build_lines([good, bad, good], lambda s: lines.line("s", s))
    assert len(out) == 2
    assert rejected[0][0] is bad and "not finite" in rejected[0][1]


def test_signal_name_keeps_extra_slashes():
    _, tags, _, _ = parse(SignalLines().line("s", Sample("l/st/a/b", 1.0, 0.0)))
    assert dict(tags)["signal"] == "a/b"


def test_timestamp_precisions():
    assert timestamp(1700000000.5, "s") == 1700000000  # round half to even
    assert timestamp(1700000000.123456, "ms") == 1700000000123
    assert timestamp(1700000000.123456, "us") == 1700000000123456
    assert timestamp(1700000000.123456, "ns") == 1700000000123456000
    with pytest.raises(LineProtocolError):
        timestamp(1.0, "m")


def test_kpi_rows_station_line_site_and_none_fields_omitted():
    station = KpiWindow("s", "l1", "reflow", 1000.0, 1060.0, pbt_s=60, apt_s=45, produced=9, good=8,
                        availability=0.75, performance=1.2, flags=["performance>1"])
    m, tags, fields, ts = parse(kpi_line(station))
    assert m == "station_kpi" and ts == 1_060_000
    assert tags == [("line", "l1"), ("site", "s"), ("station", "reflow"), ("window", "60s")]
    assert fields["apt_s"] == 45.0 and fields["produced"] == 9.0 and fields["performance"] == 1.2
    assert "oee" not in fields and "quality" not in fields and "co2e_kg" not in fields  # None: omitted
    assert fields["flags"] == "performance>1"
    assert all(isinstance(v, float) for k, v in fields.items() if k != "flags")

    _, tags, _, _ = parse(kpi_line(KpiWindow("s", "l1", None, 0.0, 28800.0, oee=0.5)))
    assert tags == [("line", "l1"), ("site", "s"), ("window", "28800s")]
    _, tags, _, ts = parse(kpi_line(KpiWindow("s", None, None, 500.0, None, oee=float("nan"), apt_s=1)))
    assert tags == [("site", "s"), ("window", "open")] and ts == 500_000
    with pytest.raises(LineProtocolError):
        kpi_line(KpiWindow("s", None, None, None, None))


def test_emissions_line():
    r = EmissionsRecord("s", "2", "grid import", "location", 3600.0, 7200.0, 120.5, "kWh", 64.3, co2_kg=64.0,
                        ch4_kg=0.001, n2o_kg=0.0002, factor_id="cn-east-2023", gwp_set="AR6", origin="simulated",
                        data_quality="estimated", estimated_activity=20.5, readings=59, resets=1)
    m, tags, fields, ts = parse(emissions_line(r, "s"))
    assert m == "emissions" and ts == 3600  # the ledger's hour: at its start
    assert tags == [("method", "location"), ("origin", "simulated"), ("scope", "2"), ("site", "s"),
                    ("source", "grid import")]
    assert fields == {
        "activity": 120.5, "co2e_kg": 64.3, "co2_kg": 64.0, "ch4_kg": 0.001, "n2o_kg": 0.0002,
        "estimated_activity": 20.5, "readings": 59.0, "resets": 1.0,
        "activity_unit": "kWh", "factor_id": "cn-east-2023", "factor_version": "", "gwp_set": "AR6",
        "data_quality": "estimated",
    }


_tag_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r/\\"), min_size=1, max_size=12)


@given(site=_tag_text, line=_tag_text, station=_tag_text, name=_tag_text,
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=20)),
       ts=st.floats(min_value=0, max_value=4e9))
def test_any_sample_round_trips(site, line, station, name, value, ts):
    text = SignalLines("ms").line(site, Sample(f"{line}/{station}/{name}", value, ts))
    m, tags, fields, t = parse(text)
    assert m == "signal"
    assert tags == sorted(tags)
    assert dict(tags) == {"site": site, "line": line, "station": station, "signal": name}
    if isinstance(value, str):
        assert fields == {"state": value, "quality": "good"}
    else:
        assert fields["value"] == value and not math.isnan(fields["value"])
    assert t == round(ts * 1000)
