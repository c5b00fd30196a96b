"""The building blocks of the factory schema: strict frozen models and the constrained scalars
(names that are one segment of a signal path, positive and non-negative numbers, fractions)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a path segment of a signal: no '/', no spaces
Name = Annotated[str, Field(pattern=NAME, max_length=64)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
