"""The gradient noise scale B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018), measured cheaply.

The critical batch size is about where the noise of a batch gradient, tr(Sigma)/B, equals the
signal |G|^2. Both are estimated from squared gradient norms at two batch sizes, since
E|G_B|^2 = |G|^2 + tr(Sigma)/B: two equations, two unknowns (their appendix A.1).

The two batch sizes come for free from the batch being trained on: on a measurement step the
batch is backpropagated as two halves, each loss weighted by its share, so that ``.grad`` ends as
the whole batch's gradient (the optimizer step is unchanged) while the gradient after the first
half, and the difference after the second, are the two half-batch gradients. The extra cost is a
copy of the gradient and a few norms, plus whatever two half-size passes lose to one full pass.

Single estimates are very noisy, and the ratio of two noisy numbers is biased, so |G|^2 and
tr(Sigma) are each smoothed first (an exponential moving average) and divided afterwards.

Batch size 1 cannot be split, and the estimate is then unavailable rather than taken from two
consecutive steps: between steps the weights move, so the difference of consecutive gradients
mixes the change of the true gradient with sampling noise, and it would need a gradient copy on
every step. The noise scale belongs to the model and data at the current weights, not to the
batch size trained with, so a sweep's runs at batch >= 2 show it for the batch-1 run too.
Models with batch norm see half-batch statistics on measurement steps: a small perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tui_lab.core.evaluation import LossFn
from tui_lab.schema.analysis import NoiseScalePoint


@dataclass(frozen=True)
class TwoBatchSample:
    """Squared gradient norms at two batch sizes from one step; tensors, to avoid host syncs."""

    b_small: float  # harmonic mean of the halves' sizes (exact for odd batches, see below)
    b_big: int
    small_sq_norm: Tensor  # mean of the two halves' |g|^2
    big_sq_norm: Tensor  # |g|^2 of the whole batch
    loss: Tensor  # mean loss over the whole batch, detached


def noise_scale_available(batch_size: int) -> bool:
    """Whether a batch of this size can be measured: it must split into two non-empty halves."""
    return batch_size >= 2


def _sq_norm(tensors: list[Tensor]) -> Tensor:
    return torch.stack([torch.linalg.vector_norm(t) for t in tensors]).square().sum()


def measure_two_batch(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    *,
    micro_batch_size: int | None = None,
) -> TwoBatchSample:
    """Backward the batch as two halves; leaves ``.grad`` = the gradient of the batch's mean loss.

    Replaces ``zero_grad(); loss_fn(model(x), y).backward()`` on a measurement step. ``loss_fn``
    must return the mean loss over its inputs. With ``micro_batch_size`` each half is itself
    accumulated in micro-batches, for batches that only fit in memory that way.
    """
    batch = len(y)
    if not noise_scale_available(batch):
        raise ValueError(f"a batch of {batch} cannot be split in two to measure the noise scale")
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    sizes = [batch // 2, batch - batch // 2]
    loss = torch.zeros((), device=x.device)
    first_half: list[Tensor | None] = []
    for i, (xs, ys) in enumerate(zip(x.split(sizes), y.split(sizes), strict=True)):
        chunk = micro_batch_size or len(ys)
        for xm, ym in zip(xs.split(chunk), ys.split(chunk), strict=True):
            part_loss = loss_fn(model(xm), ym) * (len(ym) / batch)
            part_loss.backward()
            loss += part_loss.detach()
        if i == 0:
            first_half = [None if p.grad is None else p.grad.detach().clone() for p in params]
    n1, n2 = sizes
    # .grad after half one is (n1/B) g1; after both it is G_B = (n1 g1 + n2 g2)/B.
    full = [p.grad.detach() for p in params if p.grad is not None]
    g1_sq = _sq_norm([g for g in first_half if g is not None]) * (batch / n1) ** 2
    second_half = [  # (n2/B) g2, reusing the copy's memory rather than allocating another
        p.grad.detach() if g is None else g.neg_().add_(p.grad)
        for g, p in zip(first_half, params, strict=True)
        if p.grad is not None
    ]
    g2_sq = _sq_norm(second_half) * (batch / n2) ** 2
    # E[(|g1|^2 + |g2|^2)/2] = |G|^2 + tr(Sigma) (1/n1 + 1/n2)/2: the harmonic mean of n1, n2.
    return TwoBatchSample(
        b_small=2 / (1 / n1 + 1 / n2),
        b_big=batch,
        small_sq_norm=(g1_sq + g2_sq) / 2,
        big_sq_norm=_sq_norm(full),
        loss=loss,
    )


class NoiseScaleEstimator:
    """Smooths the two-batch estimates of |G|^2 and tr(Sigma) separately; their ratio is B_simple.

    The moving averages are bias-corrected (as in Adam), so the first estimates are not pulled
    towards zero. ``update`` does no host sync; reading ``estimate`` or ``point`` does one.
    """

    def __init__(self, ema: float = 0.9):
        if not 0 <= ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        self.ema = ema
        self.samples = 0
        self._weight = 0.0
        self._grad_sq: Tensor | None = None
        self._trace_sigma: Tensor | None = None

    def update(self, sample: TwoBatchSample) -> None:
        small, big = sample.b_small, sample.b_big
        grad_sq = (big * sample.big_sq_norm - small * sample.small_sq_norm) / (big - small)
        trace_sigma = (sample.small_sq_norm - sample.big_sq_norm) / (1 / small - 1 / big)
        keep = self.ema
        if self._grad_sq is None or self._trace_sigma is None:
            self._grad_sq, self._trace_sigma = (1 - keep) * grad_sq, (1 - keep) * trace_sigma
        else:
            self._grad_sq = keep * self._grad_sq + (1 - keep) * grad_sq
            self._trace_sigma = keep * self._trace_sigma + (1 - keep) * trace_sigma
        self._weight = keep * self._weight + (1 - keep)
        self.samples += 1

    def smoothed(self) -> tuple[float, float] | None:
        """(|G|^2, tr(Sigma)) as smoothed so far; None before the first update."""
        if self._grad_sq is None or self._trace_sigma is None:
            return None
        grad_sq, trace_sigma = torch.stack([self._grad_sq, self._trace_sigma]).tolist()
        return grad_sq / self._weight, trace_sigma / self._weight

    @property
    def estimate(self) -> float | None:
        """B_simple, or None before any update or while the smoothed |G|^2 is not positive."""
        smoothed = self.smoothed()
        return None if smoothed is None else _ratio(*smoothed)

    def point(self, epoch: int, step: int) -> NoiseScalePoint | None:
        """The current estimate as recorded in a session; None before the first update."""
        smoothed = self.smoothed()
        if smoothed is None:
            return None
        grad_sq, trace_sigma = smoothed
        return NoiseScalePoint(
            epoch=epoch,
            step=step,
            b_simple=_ratio(grad_sq, trace_sigma),
            grad_sq=grad_sq,
            trace_sigma=trace_sigma,
        )


def _ratio(grad_sq: float, trace_sigma: float) -> float | None:
    # Noise swamping the signal can make the |G|^2 estimate <= 0: no meaningful ratio then.
    return trace_sigma / grad_sq if grad_sq > 0 else None
