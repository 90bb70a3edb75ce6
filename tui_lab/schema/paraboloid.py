"""The paraboloid lab: a linear neuron's error surface and the paths optimizers take across it.

Two weights, squared error: the surface is exactly a 2-D bowl with elliptical contours, so
every path can be drawn over the true contours. Every field has a default, so
``{"kind": "paraboloid"}`` alone is a valid preset, and the defaults show the ideas of the
product brief (batch size 1 zig-zags, Rprop breaks with small batches, RMSprop copes).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from tui_lab.schema.common import (
    MAX_LIST,
    SCHEMA_VERSION,
    BatchSize,
    BatchSizes,
    Int,
    Name,
    Rounded,
    RoundedList,
    Seed,
    StrictModel,
    Timestamp,
    increasing,
    no_repeats,
)
from tui_lab.schema.train import OptimizerConfig

MAX_GRID_SIDE = 60
MAX_PATH_POINTS = 400
# Batch size 1 takes n_samples × epochs steps; above this the sketch stops being interactive.
MAX_STEPS_PER_PATH = 50_000

# Learning rates that suit this surface (largest curvature 1), used where a preset gives none:
# the training defaults in OPTIMIZER_DEFAULTS are tuned for networks and crawl here.
PARABOLOID_LR: dict[str, float] = {
    "sgd": 0.5,
    "momentum": 0.05,
    "nesterov": 0.05,
    "rprop": 0.05,
    "rmsprop": 0.05,
    "adagrad": 0.5,
    "adam": 0.1,
    "adamw": 0.1,
}

Finite = Annotated[float, Field(allow_inf_nan=False)]
# Far beyond any surface drawn (the minimum sits within a few units of 0), and far from overflow.
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6)]


def _default_optimizers() -> list[OptimizerConfig]:
    return [OptimizerConfig(name=name) for name in ("sgd", "momentum", "rprop", "rmsprop", "adam")]


class ParaboloidPreset(StrictModel):
    """A synthetic least-squares problem with two weights, and the optimizers to run on it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["paraboloid"]
    name: Name = "paraboloid"
    description: str = ""
    condition_number: Annotated[float, Field(ge=1, le=10_000, allow_inf_nan=False)] = Field(
        20.0, description="Largest over smallest curvature: how elongated the ellipses are."
    )
    noise: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = Field(
        0.5, description="Standard deviation of the noise added to the targets."
    )
    n_samples: Annotated[Int, Field(ge=2, le=10_000)] = 32
    seed: Seed = 0
    rotation_degrees: Finite = Field(
        20.0, description="Angle of the ellipses' long axis from the w1 axis."
    )
    start: tuple[Coordinate, Coordinate] | None = Field(
        None,
        description="Where every path starts; by default far out along the ellipses' long axis.",
    )
    epochs: Annotated[Int, Field(ge=1, le=10_000)] = 40
    optimizers: Annotated[
        list[OptimizerConfig],
        no_repeats("optimizer", key=lambda o: o.model_dump(), label=lambda o: repr(o.name)),
    ] = Field(
        default_factory=_default_optimizers,
        min_length=1,
        max_length=MAX_LIST,
        description="An optimizer without 'lr' takes the lab's default for this surface.",
    )
    batch_sizes: BatchSizes = Field(
        default_factory=lambda: [1, 4, 16, "full"], min_length=1, max_length=8
    )
    grid_points: Annotated[Int, Field(ge=8, le=MAX_GRID_SIDE)] = Field(
        MAX_GRID_SIDE, description="Loss grid points per side."
    )
    path_points: Annotated[Int, Field(ge=10, le=MAX_PATH_POINTS)] = Field(
        MAX_PATH_POINTS, description="Most points kept per path (first and last always)."
    )

    @field_validator("optimizers")
    @classmethod
    def _only_elementwise_optimizers(cls, value: list[OptimizerConfig]) -> list[OptimizerConfig]:
        for config in value:
            if config.name not in PARABOLOID_LR:
                raise ValueError(
                    f"optimizer {config.name!r} is not offered in the paraboloid lab "
                    f"(choose from: {', '.join(PARABOLOID_LR)})"
                )
        return value

    @model_validator(mode="after")
    def _stays_interactive(self) -> ParaboloidPreset:
        smallest = min(self.n_samples if b == "full" else b for b in self.batch_sizes)
        steps = -(-self.n_samples // smallest) * self.epochs
        if steps > MAX_STEPS_PER_PATH:
            raise ValueError(
                f"batch size {smallest} takes {steps} steps (n_samples / batch size × epochs); "
                f"keep it at most {MAX_STEPS_PER_PATH} so the sketch redraws at once"
            )
        return self

    def optimizer_grid(self) -> list[OptimizerConfig]:
        """The optimizers fully resolved, with the lab's learning rate where none was given."""
        return [
            (
                c if c.lr is not None else c.model_copy(update={"lr": PARABOLOID_LR[c.name]})
            ).resolved()
            for c in self.optimizers
        ]


class ParaboloidGrid(StrictModel):
    """The loss on a square grid around the minimum: ``loss[i][j]`` at ``(w1[j], w2[i])``."""

    w1: RoundedList = Field(min_length=2, max_length=MAX_GRID_SIDE)
    w2: RoundedList = Field(min_length=2, max_length=MAX_GRID_SIDE)
    loss: list[RoundedList] = Field(max_length=MAX_GRID_SIDE)
    levels: RoundedList = Field(
        max_length=32, description="Losses of the contour lines drawn, lowest first."
    )

    @model_validator(mode="after")
    def _shapes_agree(self) -> ParaboloidGrid:
        rows = {len(row) for row in self.loss}
        if len(self.loss) != len(self.w2) or rows != {len(self.w1)}:
            raise ValueError("loss must have len(w2) rows of len(w1) values")
        if not (increasing(self.w1) and increasing(self.w2)):
            raise ValueError("w1 and w2 must be strictly increasing")
        return self


class ParaboloidPath(StrictModel):
    """One optimizer at one batch size, from the common start point."""

    label: str
    optimizer: OptimizerConfig
    batch_size: BatchSize
    steps: Int = Field(description="Optimizer steps taken.")
    step: list[Int] = Field(max_length=MAX_PATH_POINTS, description="Step of each kept point.")
    w1: RoundedList = Field(max_length=MAX_PATH_POINTS)
    w2: RoundedList = Field(max_length=MAX_PATH_POINTS)
    final_loss: Rounded
    distance_to_minimum: Rounded = Field(description="Euclidean distance of the last point.")
    diverged: bool = Field(False, description="Stopped early: the weights ran off to infinity.")

    @model_validator(mode="after")
    def _lengths_agree(self) -> ParaboloidPath:
        if not len(self.step) == len(self.w1) == len(self.w2):
            raise ValueError("step, w1 and w2 must have the same length")
        return self


class ParaboloidSession(StrictModel):
    """What the paraboloid lab computed for one preset: the surface and every path on it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["paraboloid"] = "paraboloid"
    id: str
    created: Timestamp
    preset: ParaboloidPreset
    minimum: tuple[Rounded, Rounded] = Field(description="The least-squares solution.")
    minimum_loss: Rounded
    curvatures: tuple[Rounded, Rounded] = Field(
        description="Eigenvalues of the Hessian, largest first."
    )
    grid: ParaboloidGrid
    paths: list[ParaboloidPath]
    compute_seconds: float = Field(description="Time to build the problem and run every path.")


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def batch_size_list(text: str) -> list[int | str]:
    """``1,16,full`` → [1, 16, "full"]; the preset's validation checks the numbers."""
    try:
        return [item if item == "full" else int(item) for item in comma_list(text)]
    except ValueError:
        raise ValueError("expected numbers or 'full', e.g. 1,16,full") from None
