"""The only schema: every preset and session model of bslab, validated by pydantic.

Presets are written by hand, so every field has a sensible default and unknown fields are
errors. Sessions are written by the lab and read back by compare, the app and the analysis;
their curves are bounded in length so that files stay small whatever the run length.
Each concern has its own module here; this package re-exports them as one namespace.
"""

from typing import Annotated, Any

from pydantic import Discriminator, Tag, TypeAdapter

from tui_lab.schema.common import SCHEMA_VERSION, BatchSize, StrictModel, round_significant
from tui_lab.schema.paraboloid import (
    ParaboloidGrid,
    ParaboloidPath,
    ParaboloidPreset,
    ParaboloidSession,
)
from tui_lab.schema.session import Environment, EpochRecord, LossCurve, Session, Status, Summary
from tui_lab.schema.train import (
    OPTIMIZER_DEFAULTS,
    OPTIMIZER_NAMES,
    DatasetName,
    ExecutorSettings,
    LocalExecutorSettings,
    LrGrid,
    LrScaling,
    ModelName,
    OptimizerConfig,
    OptimizerName,
    PresetOptimizer,
    RayExecutorSettings,
    RunConfig,
    Stacking,
    TrainPreset,
)
from tui_lab.schema.trajectory import Interpolation, TrajectorySketch
from tui_lab.schema.user import CheckedModel, UserData, UserModel


def _kind(value: Any) -> str:
    """A preset or session without ``kind`` is a training one (the common, hand-written case)."""
    if isinstance(value, dict):
        return value.get("kind", "train")
    return getattr(value, "kind", "train")


Preset = Annotated[
    Annotated[TrainPreset, Tag("train")] | Annotated[ParaboloidPreset, Tag("paraboloid")],
    Discriminator(_kind),
]
AnySession = Annotated[
    Annotated[Session, Tag("train")] | Annotated[ParaboloidSession, Tag("paraboloid")],
    Discriminator(_kind),
]
PRESET_ADAPTER: TypeAdapter[TrainPreset | ParaboloidPreset] = TypeAdapter(Preset)
SESSION_ADAPTER: TypeAdapter[Session | ParaboloidSession] = TypeAdapter(AnySession)

__all__ = [
    "OPTIMIZER_DEFAULTS",
    "OPTIMIZER_NAMES",
    "PRESET_ADAPTER",
    "SCHEMA_VERSION",
    "SESSION_ADAPTER",
    "AnySession",
    "BatchSize",
    "CheckedModel",
    "DatasetName",
    "Environment",
    "EpochRecord",
    "ExecutorSettings",
    "Interpolation",
    "LocalExecutorSettings",
    "LossCurve",
    "LrGrid",
    "LrScaling",
    "ModelName",
    "OptimizerConfig",
    "OptimizerName",
    "ParaboloidGrid",
    "ParaboloidPath",
    "ParaboloidPreset",
    "ParaboloidSession",
    "Preset",
    "PresetOptimizer",
    "RayExecutorSettings",
    "RunConfig",
    "Session",
    "Stacking",
    "Status",
    "StrictModel",
    "Summary",
    "TrainPreset",
    "TrajectorySketch",
    "UserData",
    "UserModel",
    "round_significant",
]
