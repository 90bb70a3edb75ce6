"""Learning-rate range test (Smith 2017): train briefly while the rate grows exponentially.

The loss first barely moves (rate too small), then falls fastest, then blows up. The suggested
rate is where the smoothed loss falls fastest per decade of rate. Run it once per batch size to
see how the usable rate moves with the batch. The model is left exactly as it was found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import islice

import numpy as np
from torch import Tensor, nn
from torch.optim import Optimizer

from tui_lab.core.evaluation import LossFn
from tui_lab.core.weights import preserved_state
from tui_lab.schema.analysis import LrRangeResult


def lr_range_test(
    model: nn.Module,
    make_optimizer: Callable[[float], Optimizer],
    batches: Iterator[tuple[Tensor, Tensor]],
    loss_fn: LossFn,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> LrRangeResult:
    """Sweep the rate from ``start_lr`` to ``end_lr`` over ``steps`` batches, one step each.

    Stops once the smoothed loss exceeds ``diverge_factor`` times its best (or is not finite),
    or when ``batches`` runs out. Reads the loss every step (a host sync; this is a short test).
    """
    if not 0 < start_lr < end_lr or steps < 2:
        raise ValueError("need 0 < start_lr < end_lr and at least 2 steps")
    device = next(model.parameters()).device
    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    diverged = False
    with preserved_state(model):
        model.train()
        optimizer = make_optimizer(start_lr)
        for step, (x, y) in enumerate(islice(batches, steps)):
            lr = start_lr * growth**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x.to(device)), y.to(device))
            loss.backward()
            optimizer.step()
            value = loss.item()
            average = smoothing * average + (1 - smoothing) * value
            debiased = average / (1 - smoothing ** (step + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(debiased)
            if not math.isfinite(debiased) or debiased > diverge_factor * best:
                diverged = True
                break
            best = min(best, debiased)
    usable = len(lrs) - diverged  # the point that diverged is no candidate
    return LrRangeResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=smoothed,
        suggested_lr=suggest_lr(lrs[:usable], smoothed[:usable]),
        stop_reason="diverged" if diverged else "finished" if len(lrs) == steps else "out_of_data",
    )


def suggest_lr(lrs: list[float], smoothed_losses: list[float]) -> float | None:
    """The rate where the smoothed loss falls fastest against log(rate); None if it never falls.

    Only the descent up to the lowest smoothed loss counts (a fall after a spike at too high a
    rate is recovery, not learning), and the first tenth of the sweep is skipped: the running
    average is still settling there.
    """
    begin = len(lrs) // 10
    end = int(np.argmin(smoothed_losses)) + 1 if smoothed_losses else 0
    if end - begin < 3:
        return None
    slopes = np.gradient(np.asarray(smoothed_losses[begin:end]), np.log(lrs[begin:end]))
    steepest = int(np.argmin(slopes))
    return float(lrs[begin + steepest]) if slopes[steepest] < 0 else None
