"""Pieces every schema module shares: the strict base model and common field types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

SCHEMA_VERSION = 1

BatchSize = PositiveInt | Literal["full"]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class StrictModel(BaseModel):
    """Base for every model: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
