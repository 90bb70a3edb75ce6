"""Results of the batch-size analyses: noise scale, batch-size finder, lr range test, scaling fit.

These are saved in sessions (noise-scale points, peak memory) or printed by commands (finder,
range test, scaling fit), so they are strict pydantic models like every other schema model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from tui_lab.schema.common import NonNegativeInt, PositiveFloat, PositiveInt, StrictModel

STABLE_RATIO = 2.0  # an interval whose ends are further apart than this factor is not yet stable
MAX_PER_EPOCH = 4  # noise-scale measurements: each is a point of the session, which stays small


class NoiseScaleSettings(StrictModel):
    """Whether and how often a run measures the gradient noise scale (McCandlish et al. 2018).

    Each measurement takes per-sample gradients of a fresh random probe of the training set at
    the current weights, so runs at every batch size are measured alike; one more is taken where
    the run first reaches its target accuracy.
    """

    enabled: bool = True
    probe_size: Annotated[PositiveInt, Field(ge=64)] = Field(
        1024,
        description="Training samples per measurement (at most the training set). The interval "
        "is tight once this is a few times the noise scale itself.",
    )
    per_epoch: Annotated[float, Field(gt=0, le=MAX_PER_EPOCH)] = Field(
        2, description="Most measurements per epoch, by samples seen (whatever the batch size)."
    )
    time_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.05,
        description="Most share of the training time spent measuring: a measurement that is "
        "due waits until it fits (short or fast runs are measured less often); 1: no limit.",
    )


def stable(low: float, high: float) -> bool:
    """Whether an interval is tight enough to show the estimate as a number one can use.

    Here, apart from the estimator (which needs torch), so that readers of sessions need not
    import torch (a second of a ``compare``)."""
    return low > 0 and high <= STABLE_RATIO * low


class NoiseScalePoint(StrictModel):
    """One measurement of the noise scale, at the weights of one moment of a run."""

    epoch: Annotated[float, Field(ge=0)] = Field(description="Epochs done when measured.")
    step: NonNegativeInt
    samples: NonNegativeInt = Field(description="Training samples seen when measured.")
    seconds: Annotated[float, Field(ge=0)] = Field(description="Training seconds so far.")
    b_simple: float | None = Field(
        description="tr(Sigma)/|G|^2, the critical batch size estimate; None while |G|^2 <= 0."
    )
    b_low: Annotated[float, Field(ge=0)] = Field(description="Lower end of the 95% interval.")
    b_high: float | None = Field(
        description="Upper end of the 95% interval; None when unbounded (|G|^2 may be 0)."
    )
    grad_sq: float = Field(description="|G|^2, the full training set's gradient's norm^2.")
    grad_sq_se: float = Field(description="Standard error of grad_sq.")
    trace_sigma: float = Field(description="tr(Sigma), the per-sample gradient variance.")
    trace_sigma_se: float = Field(description="Standard error of trace_sigma.")
    probe_size: PositiveInt
    at_target: bool = Field(
        False, description="Measured where the run first reached its target accuracy."
    )


class MemoryPeak(StrictModel):
    """Peak memory of a run; what it measures depends on the device (see ``source``)."""

    peak_bytes: NonNegativeInt
    source: Literal["cuda_peak_allocated", "process_peak_rss"] = Field(
        description="cuda: tensors' peak on the device; otherwise the process's peak RSS, "
        "a high-water mark over the whole process life that cannot be reset."
    )


class BatchTrial(StrictModel):
    """One batch size the finder tried: its throughput, or that it ran out of memory."""

    batch_size: PositiveInt
    fits: bool
    samples_per_second: float | None = None
    error: str = Field("", description="The out-of-memory message when it did not fit.")
    contended: bool = Field(
        False, description="Timed while other work held the cores: the throughput is too low."
    )


class BatchFinderResult(StrictModel):
    largest_batch_size: PositiveInt | None = Field(
        description="Largest batch that ran; None when even the first size tried did not fit."
    )
    limit: PositiveInt = Field(description="The ceiling searched up to (training-set size).")
    reached_limit: bool = Field(description="True when the limit fits: memory was not the bound.")
    trials: list[BatchTrial] = Field(description="Every size tried, in the order tried.")


class LrRangeResult(StrictModel):
    """Learning-rate range test (Smith 2017): losses along an exponential sweep of rates."""

    lrs: list[PositiveFloat]
    losses: list[float]
    smoothed_losses: list[float]
    suggested_lr: PositiveFloat | None = Field(
        description="Rate at the steepest descent of the smoothed loss (per log lr)."
    )
    stop_reason: Literal["finished", "diverged", "out_of_data"]

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason != "finished"


class ScalingFit(StrictModel):
    """McCandlish et al.'s (S/S_min - 1)(E/E_min - 1) = 1, i.e. S(B) = S_min (1 + B_crit/B)."""

    s_min: Annotated[float, Field(ge=0)] = Field(description="Steps needed at infinite batch.")
    e_min: Annotated[float, Field(ge=0)] = Field(description="Samples needed at batch size 1.")
    b_crit: float | None = Field(
        description="E_min/S_min; None when S_min is 0 (perfect scaling at every size tried)."
    )
    r2: float = Field(description="Coefficient of determination of log steps (the log-log view).")
    batch_sizes: list[PositiveInt] = Field(description="Batch sizes of the runs fitted.")
    unreached_batch_sizes: list[PositiveInt] = Field(
        description="Batch sizes whose runs never reached the target (left out of the fit)."
    )

    def steps(self, batch_size: float) -> float:
        """Fitted steps to target at this batch size."""
        return self.s_min + self.e_min / batch_size

    def samples(self, batch_size: float) -> float:
        """Fitted samples to target at this batch size (E = B S)."""
        return batch_size * self.steps(batch_size)


class BatchOptima(StrictModel):
    """The batch sizes that are best in wall time to target and in final accuracy."""

    fastest_batch_size: PositiveInt | None = Field(
        description="Least training seconds to the target; None when no run reached it."
    )
    seconds_to_target: float | None
    most_accurate_batch_size: PositiveInt | None
    final_accuracy: float | None
