"""What the command line needs besides its commands: help without ``<bool>`` after flags, and the
checks of file arguments that run before any work, so that a wrong file costs no simulated day."""

from __future__ import annotations

from pathlib import Path

from typer.core import TyperCommand, TyperGroup

from factory_models.loading import read_text_file
from twin.store import Store


class _FlagsWithoutValue:
    """typer's help prints ``<bool>`` after a flag as if it took a value; a flag takes none."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class Command(_FlagsWithoutValue, TyperCommand):
    pass


class Group(_FlagsWithoutValue, TyperGroup):
    pass


def check_store(path: Path) -> None:
    """StoreError when ``path`` is a directory or a file that is not an SQLite store; a missing file
    is fine (the store creates it)."""
    if path.is_dir() or path.is_file():
        Store(path).close()


def check_yaml(path: Path | None) -> None:
    """ConfigError when a YAML file given to code that reads it itself (``--carbon``) is missing, a
    directory, binary or not UTF-8."""
    if path is not None:
        read_text_file(path)


def check_spool(path: Path) -> None:
    """ValueError when ``--influx-spool`` names a file that is neither a spool directory nor the
    single SQLite file of older versions (which the spool migrates)."""
    if path.is_file():
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise ValueError(f"{path}: not a spool; --influx-spool names a directory (or an older SQLite spool file)")


def check_output(path: Path) -> None:
    """ValueError when the file to write is a directory (``report --out``)."""
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; expected the report file to write")
