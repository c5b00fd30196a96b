"""The InfluxDB sink's settings and its token (from the environment or a file, never the config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class InfluxConfig(BaseModel):
    """Where and how to write. Sizes in bytes, times in seconds (units in the names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    org: str = ""  # InfluxDB 1.8 compatibility API: ignored, may stay empty
    bucket: str = Field(min_length=1)  # 1.8: "database/retention-policy"
    token_env: str = "INFLUX_TOKEN"
    token_file: Path | None = None
    precision: Literal["s", "ms", "us", "ns"] = "ms"
    batch_size: int = Field(default=5000, gt=0, le=1_000_000)
    flush_interval_s: float = Field(default=1.0, gt=0)
    gzip: bool = False
    timeout_s: float = Field(default=10.0, gt=0)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    spool_path: Path = Path("influx-spool.sqlite")
    spool_max_bytes: int = Field(default=512 * 2**20, gt=0)
    spool_max_age_s: float = Field(default=7 * 86400.0, gt=0)
    spool_sync: Literal["full", "normal"] = "full"
    dead_letter_path: Path | None = None  # default: the spool path with ".deadletter.jsonl"

    @model_validator(mode="before")
    @classmethod
    def _no_token_here(cls, data):
        if isinstance(data, dict) and any(k in data for k in ("token", "password")):
            raise ValueError(
                "the token must not be in the config; set the INFLUX_TOKEN environment variable "
                "(or the variable named by token_env) or point token_file at a file holding it"
            )
        return data

    @property
    def dead_letters(self) -> Path:
        return self.dead_letter_path or self.spool_path.with_name(self.spool_path.name + ".deadletter.jsonl")


def load_token(config: InfluxConfig) -> str | None:
    """The token from ``$INFLUX_TOKEN`` (or ``token_env``), else from ``token_file``, else None."""
    token = os.environ.get(config.token_env)
    if token:
        return token.strip()
    if config.token_file is not None:
        try:
            return config.token_file.read_text().strip()
        except OSError as e:
            raise ValueError(f"token_file {config.token_file}: {e.strerror}") from None
    return None


