"""Pieces every schema module shares: the strict base model and common field types."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt
from typing_extensions import Self

SCHEMA_VERSION = 1

BatchSize = PositiveInt | Literal["full"]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


def round_significant(value: float, digits: int = 5) -> float:
    """Round to `digits` significant digits: enough for a sketch, short in JSON."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


Rounded = Annotated[float, Field(allow_inf_nan=False), AfterValidator(round_significant)]
Ratio = Annotated[float, Field(ge=0, le=1), AfterValidator(round_significant)]


class StrictModel(BaseModel):
    """Base for every model: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def updated(self, **changes: Any) -> Self:
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return self.model_validate({**self.model_dump(), **changes})
