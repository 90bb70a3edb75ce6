"""Sketches of the optimization path saved in a session: the trajectory plane and the 1-D line.

Both are small by construction (bounded point counts, floats rounded to 5 significant digits)
so that a session file stays small whatever the model and run length.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from tui_lab.schema.common import (
    Int,
    PositiveInt,
    Ratio,
    Rounded,
    RoundedList,
    StrictModel,
    increasing,
)

MAX_GRID_SIDE = 25
MAX_PATH_POINTS = 257
MAX_ALPHAS = 101


class TrajectorySettings(StrictModel):
    """Whether a run records its weights along the way and sketches its path at the end."""

    enabled: bool = True
    max_snapshots: Annotated[int, Field(ge=4, le=MAX_PATH_POINTS)] = Field(
        48, description="Weight snapshots kept (evenly spread); memory = this × parameters × 4 B."
    )
    grid_resolution: Annotated[int, Field(ge=5, le=MAX_GRID_SIDE)] = Field(
        15, description="Loss grid points per side (the grid costs resolution² evaluations)."
    )
    eval_samples: PositiveInt = Field(
        256, description="Fixed training samples on which the loss grid is evaluated."
    )


class TrajectorySketch(StrictModel):
    """The training path projected on its top two PCA directions, over a loss grid.

    Li et al. 2018: the directions are the principal components of the snapshots minus the
    final weights, so the final weights sit at (0, 0). Grid losses are on a fixed evaluation
    subset; points where the loss was not finite are stored as the grid's largest finite loss.
    """

    steps: list[Int] = Field(max_length=MAX_PATH_POINTS, description="Step of each path point.")
    path_x: RoundedList = Field(max_length=MAX_PATH_POINTS)
    path_y: RoundedList = Field(max_length=MAX_PATH_POINTS)
    explained_variance: tuple[Ratio, Ratio] = Field(
        description="Share of the path's variance along each of the two directions."
    )
    grid_x: RoundedList = Field(min_length=2, max_length=MAX_GRID_SIDE)
    grid_y: RoundedList = Field(min_length=2, max_length=MAX_GRID_SIDE)
    grid_loss: list[RoundedList] = Field(
        max_length=MAX_GRID_SIDE, description="Loss at (grid_x[j], grid_y[i]) in row i, column j."
    )
    eval_samples: PositiveInt = Field(description="Size of the fixed evaluation subset.")

    @model_validator(mode="after")
    def _shapes_agree(self) -> TrajectorySketch:
        if not len(self.steps) == len(self.path_x) == len(self.path_y):
            raise ValueError("steps, path_x and path_y must have the same length")
        rows = {len(row) for row in self.grid_loss}
        if len(self.grid_loss) != len(self.grid_y) or rows != {len(self.grid_x)}:
            raise ValueError("grid_loss must have len(grid_y) rows of len(grid_x) values")
        if not (increasing(self.grid_x) and increasing(self.grid_y)):
            raise ValueError("grid_x and grid_y must be strictly increasing")
        return self


class Interpolation(StrictModel):
    """Loss and accuracy along θ(α) = (1 − α)·θ_a + α·θ_b (Keskar et al. 2017).

    α = 0 is session a's final weights, α = 1 session b's. A value is None where the loss was
    not finite (the weights diverged there).
    """

    session_a: str = Field(description="Id of the session at α = 0.")
    session_b: str = Field(description="Id of the session at α = 1.")
    label_a: str = ""
    label_b: str = ""
    alphas: RoundedList = Field(min_length=2, max_length=MAX_ALPHAS)
    train_loss: list[Rounded | None]
    train_accuracy: list[Ratio | None]
    val_loss: list[Rounded | None]
    val_accuracy: list[Ratio | None]
    train_samples: PositiveInt
    val_samples: PositiveInt

    @model_validator(mode="after")
    def _one_value_per_alpha(self) -> Interpolation:
        series = (self.train_loss, self.train_accuracy, self.val_loss, self.val_accuracy)
        if any(len(values) != len(self.alphas) for values in series):
            raise ValueError("every loss and accuracy series needs one value per alpha")
        return self
