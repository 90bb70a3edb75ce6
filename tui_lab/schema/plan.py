"""A sweep's plan: the runs it will train, saved beside their sessions when it starts.

Sessions appear one by one as runs start; the plan lets a reader of the folder (``bslab watch``)
show the runs not started yet and the sweep's progress and ETA. Its file name does not end in
``.json``, so that readers of sessions pass it by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from tui_lab.schema.common import SCHEMA_VERSION, StrictModel
from tui_lab.schema.train import RunConfig

PLAN_SUFFIX = ".sweep"
MAX_PLANNED_RUNS = 100_000  # far beyond any sweep (a grid of 64 × 64 × seeds × lrs)


class SweepPlan(StrictModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["sweep_plan"] = "sweep_plan"
    id: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="The sweep's id: each run's group_id starts with it and a '/'."
    )
    preset_name: str
    created: datetime
    host: str
    pid: PositiveInt = Field(description="The process that drives the sweep, on host.")
    runs: list[RunConfig] = Field(max_length=MAX_PLANNED_RUNS)
    slots: Annotated[int, Field(ge=1, le=MAX_PLANNED_RUNS)] | None = Field(
        None, description="Tasks the executor trains at once."
    )
    tasks: list[list[NonNegativeInt]] | None = Field(
        None,
        max_length=MAX_PLANNED_RUNS,
        description="Indices of the runs trained together (a stack of seeds), as planned.",
    )

    @model_validator(mode="after")
    def _tasks_name_planned_runs(self) -> SweepPlan:
        """A reader indexes the runs with the tasks: each must name a planned run, once."""
        named = [index for task in self.tasks or [] for index in task]
        if any(index >= len(self.runs) for index in named) or len(set(named)) != len(named):
            raise ValueError("tasks must name each planned run at most once, by its index")
        return self
