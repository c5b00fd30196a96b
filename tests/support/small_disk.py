"""A small real file system for disk-full tests: a tmpfs mounted on a test directory.

CI runs as root, where mounting works; where it is refused the test is skipped, which fails a run
with CI=true (tests/conftest.py), so a disk-full test can never pass without a full disk.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(path: Path, size_kb: int = 256) -> Iterator[Path]:
    """``path``, a fresh tmpfs of ``size_kb`` KiB, for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path)],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a {size_kb} KiB tmpfs on {path}: {getattr(e, 'stderr', None) or e}")
    try:
        yield path
    finally:
        # lazy: a spool a failed test left open must not keep the mount (and the next run) busy
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(disk: Path, name: str = "filler") -> Path:
    """Write a file until the disk refuses more (ENOSPC); the file, to delete when space should return."""
    filler = disk / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = b"\0" * 4096
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                block = block[: len(block) // 2]
                if not block:
                    return filler
    finally:
        os.close(fd)


def make_read_only(disk: Path) -> None:
    """Remount a ``small_disk`` read-only (root cannot write to it either, unlike a chmod)."""
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)
