"""Pieces every schema module shares: the strict base model and common field types."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from typing_extensions import Self

SCHEMA_VERSION = 1

# Every whole number read from a file is bounded where it is read: what C, numpy and torch hold
# in 64 bits. A longer number (JSON allows thousands of digits) is an error naming its field,
# not an overflow deep inside a reader. Use these, never a bare ``int``, in a model.
MAX_INT = 2**63 - 1
Int = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_INT)]
PositiveInt = Annotated[int, Field(gt=0, le=MAX_INT)]
BatchSize = PositiveInt | Literal["full"]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
# Limits that keep a hand-written value inside what torch, numpy and the file system accept, so
# that a bad value is an error naming its field now rather than a crash an hour into a sweep.
MAX_LR = 1e9  # far above any lr that trains (it diverges at once), and finite once scaled
Seed = Annotated[int, Field(ge=0, le=MAX_INT, description="Random seed (0 to 2^63-1).")]
MAX_NAME_BYTES = 120  # file names are at most 255 bytes; the rest of a session's name is ~80
MAX_LIST = 64  # batch sizes or optimizers in one sweep: far more than a sweep can train


def _file_name_part(value: str) -> str:
    """A name that becomes part of file names: no hidden files, within the file-system limit."""
    if value.startswith((".", " ")) or value.endswith(" "):
        raise ValueError("must not start with '.' or a space, nor end with a space")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(
            f"is {len(value.encode('utf-8'))} bytes in UTF-8; at most {MAX_NAME_BYTES} "
            "(it becomes part of file names, which are limited to 255 bytes)"
        )
    return value


Name = Annotated[
    str,
    Field(min_length=1, max_length=80, pattern=r"^[\w.\- ]+$"),
    AfterValidator(_file_name_part),
]


def no_repeats(
    what: str, key: Callable[[Any], Any] = lambda value: value, label: Callable[[Any], str] = repr
) -> AfterValidator:
    """A list validator: an item listed twice (by ``key``) would train the same runs twice
    without a word, so it is an error naming the item and where it is repeated."""

    def check(values: list[Any]) -> list[Any]:
        seen: list[Any] = []  # a list: keys may be unhashable
        for index, value in enumerate(values):
            if key(value) in seen:
                raise ValueError(f"{what} {label(value)} is listed twice (again at index {index})")
            seen.append(key(value))
        return values

    return AfterValidator(check)


BatchSizes = Annotated[list[BatchSize], no_repeats("batch size")]


def _in_utc(value: datetime) -> datetime:
    """bslab writes UTC; a time without a zone (hand-edited) is read as UTC too, so that every
    reader can compare and sort times. One that cannot be told in UTC (year 1 at +05:00) is
    an error naming its field."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    if not value.utcoffset():  # UTC already, as bslab writes it
        return value
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is outside the range of times that can be told in UTC") from None


Timestamp = Annotated[datetime, AfterValidator(_in_utc)]


SIGNIFICANT_DIGITS = 5  # of every Rounded number: enough for a sketch, short in JSON


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Round to `digits` significant digits: enough for a sketch, short in JSON. A value that
    would round past the largest float (1.7976931348623157e308) is kept as it is."""
    rounded = float(f"{value:.{digits}g}")
    return rounded if math.isfinite(rounded) or not math.isfinite(value) else value


def round_each(values: list[float]) -> list[float]:
    """Every value rounded as by ``round_significant``, in one call per list: a session holds
    hundreds of them, and one validator call per number was most of the time to read one."""
    rounded = [float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in values]
    if math.inf in rounded or -math.inf in rounded:  # finite values that rounded past the max
        return [round_significant(value) for value in values]
    return rounded


# The validation context of a session read back from its file: bslab rounded its numbers when
# it wrote them, so reading does not round them again (a third of the time to read a session).
SAVED: dict[str, bool] = {"saved": True}


def _rounded(value: float, info: ValidationInfo) -> float:
    return value if info.context is SAVED else round_significant(value)


def _each_rounded(values: list[float], info: ValidationInfo) -> list[float]:
    return values if info.context is SAVED else round_each(values)


Finite = Annotated[float, Field(allow_inf_nan=False)]
Rounded = Annotated[Finite, AfterValidator(_rounded)]
RoundedList = Annotated[list[Finite], AfterValidator(_each_rounded)]
Ratio = Annotated[float, Field(ge=0, le=1), AfterValidator(_rounded)]


def lr_text(lr: float) -> str:
    """A learning rate to three significant digits, in exponent form when small, so that it
    never rounds to 0 in a narrow label: 0.05, 0.00125 → 1.25e-3, 0.000625 → 6.25e-4."""
    if lr == 0 or abs(lr) >= 1e-2:
        return f"{lr:.3g}"
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def increasing(values: list[float]) -> bool:
    """Strictly increasing: a grid axis that sketches can divide by its steps."""
    return all(a < b for a, b in itertools.pairwise(values))


class StrictModel(BaseModel):
    """Base for every model: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def updated(self, **changes: Any) -> Self:
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return self.model_validate({**self.model_dump(), **changes})
