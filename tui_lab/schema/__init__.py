"""The only schema: every preset and session model of bslab, validated by pydantic.

Presets are written by hand, so every field has a sensible default and unknown fields are
errors. Sessions are written by the lab and read back by compare, the app and the analysis;
their curves are bounded in length so that files stay small whatever the run length.
Each concern has its own module here; this package re-exports them as one namespace.
"""

from tui_lab.schema.common import SCHEMA_VERSION, BatchSize, StrictModel
from tui_lab.schema.train import (
    OPTIMIZER_DEFAULTS,
    DatasetName,
    Environment,
    EpochRecord,
    LossCurve,
    LrScaling,
    ModelName,
    OptimizerConfig,
    OptimizerName,
    RunConfig,
    Session,
    Status,
    Summary,
    TrainPreset,
)

Preset = TrainPreset

__all__ = [
    "OPTIMIZER_DEFAULTS",
    "SCHEMA_VERSION",
    "BatchSize",
    "DatasetName",
    "Environment",
    "EpochRecord",
    "LossCurve",
    "LrScaling",
    "ModelName",
    "OptimizerConfig",
    "OptimizerName",
    "Preset",
    "RunConfig",
    "Session",
    "Status",
    "StrictModel",
    "Summary",
    "TrainPreset",
]
