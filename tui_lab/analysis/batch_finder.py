"""The largest batch that fits: double until out of memory (or the data set), then bisect.

As Lightning's BatchSizeFinder: each size is tried with real training steps; running out of
memory is caught, the memory freed, and the size recorded as not fitting, so one search costs
about 2 log2(limit) trials and never crashes. Any other error is a real bug and propagates.
The throughput of every size that fit is kept: the hardware-use half of the batch-size story.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from tui_lab.core.devices import free_memory, is_out_of_memory, synchronize
from tui_lab.core.evaluation import LossFn
from tui_lab.core.models import seeded_model
from tui_lab.core.optimizers import build_optimizer
from tui_lab.core.weights import preserved_state
from tui_lab.schema.analysis import BatchFinderResult, BatchTrial

if TYPE_CHECKING:
    from tui_lab.core.data import Data
    from tui_lab.schema import RunConfig


def find_largest_batch(
    trial: Callable[[int], float],
    *,
    start: int = 1,
    limit: int,
    is_oom: Callable[[BaseException], bool] = is_out_of_memory,
    busy: Callable[[float, float], bool] | None = None,
    on_trial: Callable[[BatchTrial], None] | None = None,
) -> BatchFinderResult:
    """Largest batch size in [start, limit] for which ``trial`` (returning samples/s) succeeds.

    Assumes that if a size fits, every smaller one does. ``busy`` judges from a trial's CPU and
    wall seconds whether other work held the cores (its throughput is then not comparable);
    ``on_trial`` hears of every size as soon as it is tried.
    """
    if not 1 <= start <= limit:
        raise ValueError(f"need 1 <= start <= limit, got start={start}, limit={limit}")
    trials: list[BatchTrial] = []

    def record(tried: BatchTrial) -> None:
        trials.append(tried)
        if on_trial is not None:
            on_trial(tried)

    def fits(batch_size: int) -> bool:
        failure = None
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            throughput = trial(batch_size)
        except Exception as error:
            if not is_oom(error):
                raise
            failure = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
        if failure is not None:  # outside the except block: the traceback's tensors are gone
            free_memory()
            record(BatchTrial(batch_size=batch_size, fits=False, error=failure))
            return False
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        contended = busy is not None and busy(cpu, wall)
        record(
            BatchTrial(
                batch_size=batch_size, fits=True, samples_per_second=throughput, contended=contended
            )
        )
        return True

    largest, smallest_failing = None, None
    size = start
    while fits(size):
        largest = size
        if size == limit:
            break
        size = min(2 * size, limit)
    else:
        smallest_failing = size
    if largest is not None and smallest_failing is not None:
        while smallest_failing - largest > 1:
            middle = (largest + smallest_failing) // 2
            if fits(middle):
                largest = middle
            else:
                smallest_failing = middle
    return BatchFinderResult(
        largest_batch_size=largest, limit=limit, reached_limit=largest == limit, trials=trials
    )


def make_training_trial(
    model: nn.Module,
    optimizer: Optimizer,
    x: Tensor,
    y: Tensor,
    device: torch.device | str,
    *,
    loss_fn: LossFn = F.cross_entropy,
    repeats: int = 3,
) -> Callable[[int], float]:
    """A trial for ``find_largest_batch``: real training steps on the first ``b`` samples.

    One untimed warm-up step (allocator growth, kernel selection), then ``repeats`` timed steps;
    returns samples per second. Model and optimizer are restored after every trial, so the
    search leaves them as it found them and each size starts from the same weights.
    """
    device = torch.device(device)

    def train_step(xb: Tensor, yb: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        optimizer.step()

    def trial(batch_size: int) -> float:
        if batch_size > len(y):
            raise ValueError(f"batch {batch_size} is larger than the {len(y)} samples given")
        with preserved_state(model, optimizer):
            model.train()
            xb, yb = x[:batch_size].to(device), y[:batch_size].to(device)
            train_step(xb, yb)
            synchronize(device)
            start = time.perf_counter()
            for _ in range(repeats):
                train_step(xb, yb)
            synchronize(device)
            return batch_size * repeats / max(time.perf_counter() - start, 1e-9)

    return trial


def training_trial(config: RunConfig, data: Data) -> Callable[[int], float]:
    """A finder trial for one run of a sweep (data set, model, optimizer and device as in
    training: the whole set on the device); the training-set size is the search's limit."""
    data = data.to(config.device)
    model = seeded_model(config.model, data, config.seed, config.device)
    optimizer = build_optimizer(model.parameters(), config.optimizer, config.lr)
    trial = make_training_trial(model, optimizer, data.train_x, data.train_y, config.device)
    return trial
