"""The references in docs/ stay true: code cites them and nothing outside the repo, and the worked
examples' figures printed in docs/kpis.md and docs/carbon.md are what ``replay`` computes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DATA = ROOT / "tests" / "data"
SKIP_DIRS = {".git", ".venv", ".hypothesis", "__pycache__", "node_modules", "artifacts", "vendor"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".cfg", ".txt", ".js", ".html", ".css"}
# Built from parts so that this file does not match its own patterns.
OUTSIDE = ["shared/" + "reference", "reference/" + "kpis.md", "reference/" + "carbon.md",
           "reference/" + "connectors.md", "/work" + "/", "DESIGN" + ".md"]
runner = CliRunner()


def repo_text_files():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path != Path(__file__).resolve():
            yield path, rel


def test_nothing_cites_a_reference_outside_the_repo():
    hits = []
    for path, rel in repo_text_files():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            hits += [f"{rel}:{n}: {pattern}" for pattern in OUTSIDE if pattern in line]
    assert not hits, "cite docs/ instead:\n" + "\n".join(hits)


def test_every_cited_doc_exists():
    missing = set()
    for path, rel in repo_text_files():
        for name in re.findall(r"\bdocs/([A-Za-z0-9_.-]+\.(?:md|png))", path.read_text(encoding="utf-8", errors="replace")):
            if not (DOCS / name).is_file():
                missing.add(f"{rel}: docs/{name}")
    assert not missing, sorted(missing)


def replay_json(*args: str) -> dict:
    result = runner.invoke(app, ["replay", *args, "--no-store", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def block_after(doc: Path, marker: str) -> str:
    """The first fenced code block after the line that holds ``marker``."""
    text = doc.read_text(encoding="utf-8")
    start = text.index(marker)
    opening = text.index("```\n", start) + 4
    return text[opening:text.index("```", opening)]


def test_kpi_worked_example_figures_are_what_replay_computes():
    block = block_after(DOCS / "kpis.md", "What the code computes")
    flags_line = next(line for line in block.splitlines() if line.startswith("flags"))
    printed = {k: float(v) for k, v in re.findall(r"([a-z0-9_]+) (-?[0-9.]+)", block.replace(flags_line, ""))}
    assert len(printed) == 21, printed
    (station,) = replay_json(str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv"))["stations"]
    for key, value in printed.items():
        assert station[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key
    assert station["flags"] == json.loads(flags_line.split(None, 1)[1])


def test_carbon_worked_example_figures_are_what_replay_computes():
    block = block_after(DOCS / "carbon.md", "What the code computes")
    lines = block.strip().splitlines()
    em = replay_json(str(DATA / "carbon_example.yaml"), str(DATA / "carbon_example.csv"))
    totals = dict(re.findall(r"([a-z0-9_]+) (-?[0-9.]+)", lines[0]))
    assert len(totals) == 3
    for key, value in totals.items():
        assert em["emissions"][key] == pytest.approx(float(value), abs=1e-6), key
    by_source = em["emissions"]["by_source"]
    rows = [line for line in lines[1:] if " scope " in line]
    assert len(rows) == len(by_source)
    for line in rows:
        m = re.match(r"(\S+)\s+scope (\d) (\w+)\s+(\d+) (\w+).*co2e (-?[0-9.]+)$", line)
        assert m, line
        source, scope, method, activity, unit, co2e = m.groups()
        matching = [b for b in by_source if (b["source"], b["scope"], b["method"], b["activity_unit"]) == (source, scope, method, unit)
                    and b["activity"] == pytest.approx(float(activity))]
        assert len(matching) == 1, line
        assert matching[0]["co2e_kg"] == pytest.approx(float(co2e), abs=1e-6), line
    site = dict(re.findall(r"([a-z0-9_]+) (-?[0-9.]+)", lines[-1]))
    assert em["site"]["energy_kwh"] == pytest.approx(float(site["energy_kwh"]), abs=1e-6)
    assert em["site"]["co2e_kg"] == pytest.approx(float(site["co2e_kg"]), abs=1e-6)

    text = (DOCS / "carbon.md").read_text(encoding="utf-8")
    ets = dict(re.findall(r"`([a-z0-9_]+) (-?[0-9.]+)`", text[text.index("with the ETS/NDRC settings"):]))
    assert len(ets) == 3
    alt = replay_json(str(DATA / "carbon_example.yaml"), str(DATA / "carbon_example.csv"),
                      "--carbon", str(DATA / "carbon_example_ets_ndrc.yaml"))["emissions"]
    for key, value in ets.items():
        assert alt[key] == pytest.approx(float(value), abs=1e-6), key
