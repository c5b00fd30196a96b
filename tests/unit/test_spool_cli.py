"""``simulate`` with an InfluxDB spool it cannot write: exit 2 and one line, ``factory-twin: <path>: <problem>``,
before the simulation runs (never a traceback, never after an hour of work)."""

from __future__ import annotations

from pathlib import Path

from support.small_disk import make_read_only, small_disk
from typer.testing import CliRunner

from connectors.influxdb import Spool
from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "demo_smt.yaml")
runner = CliRunner()


def simulate(spool: Path):
    # 10,000 simulated hours would take minutes: a quick exit shows the check comes first
    return runner.invoke(app, ["simulate", CONFIG, "-H", "10000", "--no-store", "--influx-url", "http://127.0.0.1:9",
                               "--influx-bucket", "b", "--influx-spool", str(spool)])


def assert_one_line(result, line: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.strip() == line and result.stdout == ""


def test_spool_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    spool = tmp_path / "plain" / "spool"
    assert_one_line(simulate(spool), f"factory-twin: {spool}: Not a directory")


def test_spool_on_a_read_only_file_system(tmp_path):
    with small_disk(tmp_path / "disk", size_kb=64) as disk:
        Spool(disk / "old").close()  # a spool of an earlier run, then the disk goes read-only
        make_read_only(disk)
        assert_one_line(simulate(disk / "new"), f"factory-twin: {disk / 'new'}: Read-only file system")
        assert_one_line(simulate(disk / "old"), f"factory-twin: {disk / 'old'}: Read-only file system")
