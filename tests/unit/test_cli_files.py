"""A wrong file given to any command is one line on stderr, ``factory-twin: <path>: <problem>``, and
exit code 2: never a traceback (a Latin-1 or binary YAML, a store that is not SQLite, a directory)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CONFIG = str(ROOT / "configs" / "demo_smt.yaml")
MAPPING = str(ROOT / "configs" / "mapping_demo_mqtt.yaml")
runner = CliRunner()

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"


@pytest.fixture
def bad(tmp_path) -> dict[str, Path]:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("site:\n  name: caf\u00e9-werk\n".encode("latin-1"))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(PNG)
    text = tmp_path / "notes.sqlite"
    text.write_text("this is not a database\n")
    png = tmp_path / "picture.png"
    png.write_bytes(PNG * 40)
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"latin1": latin1, "binary": binary, "text": text, "png": png, "dir": folder}


def assert_one_clear_line(result, path: Path, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert "Traceback" not in result.output
    assert err.startswith(f"factory-twin: {path}: "), err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("command", [
    ["check", "{f}"],
    ["simulate", "{f}", "-H", "0.1", "--no-store"],
    ["replay", "{f}", str(DATA / "worked_example.csv"), "--no-store"],
    ["demo", "--config", "{f}", "--no-store", "--no-dashboard", "-d", "1"],
    ["run", "{f}", "--mapping", MAPPING, "--no-store", "--no-dashboard", "-d", "1"],
])
@pytest.mark.parametrize("kind, expect", [
    ("latin1", "line 2, column 12: byte 0xe9 is not UTF-8"),
    ("binary", "a binary file"),
    ("dir", "is a directory"),
])
def test_bad_config_file(bad, command, kind, expect):
    path = bad[kind]
    result = runner.invoke(app, [a.format(f=path) for a in command])
    assert_one_clear_line(result, path, expect)


@pytest.mark.parametrize("kind, expect", [
    ("latin1", "is not UTF-8"), ("binary", "a binary file"), ("dir", "is a directory"),
])
def test_bad_mapping_file(bad, kind, expect):
    path = bad[kind]
    result = runner.invoke(app, ["run", CONFIG, "--mapping", str(path), "--no-store", "--no-dashboard", "-d", "1"])
    assert_one_clear_line(result, path, expect)


@pytest.mark.parametrize("kind, expect", [
    ("text", "not an SQLite store (file is not a database)"),
    ("png", "not an SQLite store"),
    ("dir", "is a directory"),
])
@pytest.mark.parametrize("command", [
    ["simulate", CONFIG, "-H", "0.1"],
    ["replay", str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv")],
    ["report", "--from", "2026-01-05", "--to", "2026-01-06", "-f", "json", "-o", "{out}"],
    ["demo", "--no-dashboard", "-d", "1"],
])
def test_store_that_is_not_sqlite(bad, tmp_path, kind, expect, command):
    path = bad[kind]
    before = path.read_bytes() if path.is_file() else None
    args = [a.format(out=tmp_path / "out.json") for a in command]
    result = runner.invoke(app, [*args, "--store", str(path)])
    assert_one_clear_line(result, path, expect)
    if before is not None:
        assert path.read_bytes() == before  # a wrong file is left as it was


@pytest.mark.parametrize("kind, expect", [
    ("latin1", "is not UTF-8"), ("binary", "a binary file"), ("dir", "is a directory"),
])
@pytest.mark.parametrize("command", [
    ["simulate", CONFIG, "-H", "0.1", "--no-store"],
    ["replay", str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv"), "--no-store"],
])
def test_bad_carbon_file(bad, kind, expect, command):
    path = bad[kind]
    result = runner.invoke(app, [*command, "--carbon", str(path)])
    assert_one_clear_line(result, path, expect)


@pytest.mark.parametrize("kind, expect", [("dir", "is a directory; expected a CSV file"), ("binary", "a binary file")])
def test_bad_samples_file(bad, kind, expect):
    path = bad[kind]
    result = runner.invoke(app, ["replay", str(DATA / "worked_example.yaml"), str(path), "--no-store"])
    assert_one_clear_line(result, path, expect)


def test_missing_config_is_one_line(tmp_path):
    path = tmp_path / "nope.yaml"
    assert_one_clear_line(runner.invoke(app, ["check", str(path)]), path, "no such file")


def test_report_out_is_a_directory(bad, tmp_path):
    store = tmp_path / "s.sqlite"
    assert runner.invoke(app, ["simulate", CONFIG, "-H", "1", "--store", str(store)]).exit_code == 0
    result = runner.invoke(app, ["report", "--from", "2026-01-04", "--to", "2026-01-06", "-f", "json",
                                 "-o", str(bad["dir"]), "--store", str(store)])
    assert_one_clear_line(result, bad["dir"], "is a directory; expected the report file to write")


def test_influx_spool_that_is_not_a_spool(bad):
    # a file there is taken for the SQLite spool of older versions; one that is not SQLite is refused
    result = runner.invoke(app, ["simulate", CONFIG, "-H", "0.1", "--no-store", "--influx-url", "http://127.0.0.1:9",
                                 "--influx-bucket", "b", "--influx-spool", str(bad["text"])])
    assert_one_clear_line(result, bad["text"], "not a spool")


def test_empty_config_says_so(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert_one_clear_line(runner.invoke(app, ["check", str(path)]), path, "the file is empty")
