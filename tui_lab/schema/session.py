"""Training sessions: what one run recorded (its config, environment, epochs, curve, summary).

One run per file; the lab writes them and compare, the app and the analysis read them back.
Curves and measurement lists are bounded so that a file stays small whatever the run length.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from tui_lab.schema.analysis import MAX_PER_EPOCH, MemoryPeak, NoiseScalePoint
from tui_lab.schema.common import (
    SCHEMA_VERSION,
    Int,
    NonNegativeInt,
    PositiveInt,
    StrictModel,
    Timestamp,
)
from tui_lab.schema.train import MAX_CURVE_POINTS, MAX_EPOCHS, RunConfig
from tui_lab.schema.trajectory import TrajectorySketch

# "stopped" is never written: it is what a reader calls a run saved as "running" whose process
# is gone (killed) or silent for too long (see storage.settle_status).
Status = Literal[
    "running", "completed", "interrupted", "diverged", "out_of_memory", "failed", "stopped"
]
UNFINISHED: frozenset[str] = frozenset({"running", "stopped"})
MAX_NOISE_POINTS = MAX_PER_EPOCH * MAX_EPOCHS + 1  # and one where the target was reached
CLASSES = 10  # every data set the lab reads (digits, the MNIST family, CIFAR-10) has ten
CHANCE_MARGIN = 1.5  # "at chance": accuracy under 1.5 / classes
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Accuracy = Annotated[float, Field(ge=0, le=1)]


def _plain_file_name(value: str) -> str:
    """Only a file beside the session may be followed: no folders, no way up, nothing hidden,
    no control character (a NUL would cut the name short where the file is opened)."""
    unprintable = any(ord(char) < 32 or ord(char) == 127 for char in value)
    plain = not ("/" in value or "\\" in value or value.startswith(".") or unprintable)
    if not plain or not value.endswith(".safetensors"):
        raise ValueError("must be a plain file name ending in .safetensors, beside the session")
    return value


WeightsFile = Annotated[str, Field(max_length=255), AfterValidator(_plain_file_name)]


class Environment(StrictModel):
    """Where a run ran, so that timings can be compared fairly."""

    python: str
    torch: str
    platform: str
    host: str
    device: str
    device_name: str
    threads: Int
    bslab: str
    node: str | None = Field(
        None, description="The Ray node (IP address) that trained the run, on a cluster."
    )
    cores: Int | None = Field(None, description="CPUs this process may use.")
    training_step: Literal["eager", "cuda_graph", "stacked"] = Field(
        "eager",
        description="How each training step ran: eagerly, replayed from a CUDA graph, or for "
        "several runs at once as one stacked model.",
    )
    training_step_reason: str = Field("", description="Why that kind of step was used.")


class EpochRecord(StrictModel):
    epoch: PositiveInt
    train_loss: float = Field(description="Mean of the step losses over the epoch.")
    val_loss: float
    val_accuracy: Accuracy
    train_seconds: NonNegative = Field(description="Training seconds of this epoch.")
    eval_seconds: NonNegative
    samples_seen: NonNegativeInt = Field(
        description="Training samples seen since the start of the run."
    )
    steps: NonNegativeInt = Field(description="Optimizer steps since the start of the run.")
    lr: float = Field(description="Learning rate at the end of the epoch.")
    cpu_seconds: float | None = Field(
        None, description="CPU time the process spent in this epoch's training (all threads)."
    )
    load_average: float | None = Field(
        None, description="The machine's 1-minute load average at the end of the epoch."
    )


class LossCurve(StrictModel):
    """Step-level training loss, downsampled by averaging neighbours to a bounded length.

    Parallel lists so that any of the fair x-axes (epoch, samples, seconds) can be plotted.
    """

    step: list[NonNegativeInt] = Field(default_factory=list, max_length=MAX_CURVE_POINTS)
    epoch: list[float] = Field(default_factory=list, max_length=MAX_CURVE_POINTS)
    samples: list[NonNegativeInt] = Field(default_factory=list, max_length=MAX_CURVE_POINTS)
    seconds: list[NonNegative] = Field(default_factory=list, max_length=MAX_CURVE_POINTS)
    loss: list[float] = Field(default_factory=list, max_length=MAX_CURVE_POINTS)

    @model_validator(mode="after")
    def _parallel(self) -> LossCurve:
        lists = (self.step, self.epoch, self.samples, self.seconds, self.loss)
        if len({len(values) for values in lists}) > 1:
            raise ValueError("step, epoch, samples, seconds and loss must have the same length")
        return self


def at_chance(accuracy: float) -> bool:
    """Accuracy as if guessing among the classes (within CHANCE_MARGIN): what ``learned`` and
    every reader's 'collapsed' or 'did not learn' are judged by."""
    return accuracy < CHANCE_MARGIN / CLASSES


class Summary(StrictModel):
    epochs_run: NonNegativeInt
    seconds_per_epoch: NonNegative | None = Field(description="Mean training seconds per epoch.")
    samples_per_second: NonNegative | None
    train_seconds: NonNegative = Field(description="Training time, evaluation excluded.")
    epochs_to_target: PositiveInt | None
    steps_to_target: NonNegativeInt | None
    samples_to_target: NonNegativeInt | None
    seconds_to_target: NonNegative | None = Field(
        description="Training seconds until the epoch that first reached the target."
    )
    best_accuracy: Accuracy | None
    best_epoch: PositiveInt | None
    final_accuracy: Accuracy | None
    final_val_loss: float | None
    learned: bool | None = Field(
        None, description="False if the run ended at chance: accuracy or loss as if guessing."
    )
    cpu_utilisation: float | None = Field(
        None,
        description="CPU seconds / (training seconds × threads): under 1 when the run "
        "waited for a core another program held.",
    )
    load_average: float | None = Field(
        None, description="Highest 1-minute load average at an epoch's end."
    )
    contended: bool = Field(
        False,
        description="Timed while other work competed for the cores: its wall times "
        "are not comparable with those of a quiet machine.",
    )


class Session(StrictModel):
    """One training run, as saved to one JSON file (rewritten atomically after each epoch)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["train"] = "train"
    id: Annotated[str, Field(min_length=1, max_length=64)]
    created: Timestamp
    config: RunConfig
    environment: Environment
    pid: PositiveInt | None = Field(None, description="The writing process, on environment.host.")
    heartbeat: Timestamp | None = Field(
        None, description="When the writing process last saved this run (at least every minute)."
    )
    n_train: PositiveInt
    n_val: NonNegativeInt
    steps_per_epoch: PositiveInt
    stacked: PositiveInt = Field(
        1,
        description="Runs trained together as one stacked model, this one included (1: alone); "
        "their training seconds are the whole stack's.",
    )
    status: Status = "running"
    message: str = ""
    epochs: list[EpochRecord] = Field(default_factory=list, max_length=MAX_EPOCHS)
    curve: LossCurve = Field(default_factory=LossCurve)
    summary: Summary | None = None
    noise_scale: list[NoiseScalePoint] = Field(
        default_factory=list,
        max_length=MAX_NOISE_POINTS,
        description="Every measurement of the gradient noise scale (a few per epoch at most).",
    )
    noise_scale_note: str = Field(
        "",
        max_length=500,
        description="Why a measurement of the noise scale that was due was not taken, in words.",
    )
    peak_memory: MemoryPeak | None = None
    trajectory: TrajectorySketch | None = None
    weights_file: WeightsFile | None = Field(
        None, description="Final weights (safetensors) beside this file, for interpolation."
    )

    @property
    def finished(self) -> bool:
        """Ended and saved as such: only finished runs get a verdict (a ★, an optimum)."""
        return self.status not in UNFINISHED
