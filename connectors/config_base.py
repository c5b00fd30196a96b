"""What every source's configuration shares: strict models, the source name, credentials.

A plugin's ``config.py`` (``connectors/<protocol>/config.py``) builds its source model on
``SourceConfig`` and, when its protocol logs in, ``Credentials``. The per-entry rules (scale,
offset, unit, deadband, timestamp) are in ``connectors/transform.py``.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from factory_models import ConfigError
from factory_models.schema import NAME

Name = Annotated[str, Field(pattern=NAME, max_length=64)]


def _zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as 'Asia/Shanghai' or 'Europe/Berlin'") from None
    return name


#: ``timezone:`` of a source: the IANA zone of device times sent without a UTC offset
TimeZoneName = Annotated[str, AfterValidator(_zone)]


def checked_url(url: str, schemes: tuple[str, ...], expected: str) -> SplitResult:
    """``url`` split, or ValueError(``expected``) when its scheme is not one of ``schemes`` or it
    names no host."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(expected)
    return parts


class Strict(BaseModel):
    """A config model that refuses unknown keys (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(Strict):
    """One entry of a plugin's list in the mapping file: one connection, one ``Source``.

    ``name`` names the in-band ``connection/<name>`` signal, so it is unique across the file.
    """

    name: Name

    @abstractmethod
    def signal_templates(self) -> Iterator[tuple[tuple, str]]:
        """Every signal (or signal template) this entry names, with its field location relative to
        the entry, e.g. ``(("nodes", 2, "signal"), "{line}/{station}/state")``. The loader checks
        each against the factory's signals."""


class Credentials(Strict):
    """User name and password named by environment variables or a file; never written in the config."""

    username_env: str | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password(self):
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username_env:
            raise ValueError("a password needs username_env (the variable holding the user name)")
        return self

    def resolve_credentials(self) -> tuple[str | None, str | None]:
        """(username, password) read now; a named variable or file that is missing is a ConfigError."""
        if not self.username_env:
            return None, None
        user = os.environ.get(self.username_env)
        if user is None:
            raise ConfigError(f"${self.username_env}", ["environment variable for the user name is not set"])
        password = None
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise ConfigError(f"${self.password_env}", ["environment variable for the password is not set"])
        elif self.password_file:
            try:
                password = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(self.password_file, [f"cannot read the password file: {exc.strerror or exc}"]) from None
        return user, password
