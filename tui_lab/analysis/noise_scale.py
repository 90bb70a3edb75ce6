"""The gradient noise scale B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018), with its interval.

The critical batch size is about where the noise of a batch gradient, tr(Sigma)/B, equals the
signal |G|^2. Both belong to the weights (and the data), not to the batch size being trained, so
they are measured on a *probe*: a random sample of the training set, drawn afresh for each
measurement, split into equal groups whose summed-loss gradients are taken one group at a time.

From the group gradient sums S_c (sizes n_c, probe size P = sum n_c, training set of N):

- pairs of samples in different groups give E[g_i . g_j] = |G|^2 - tr(Sigma)/N (sampling without
  replacement), from |sum S_c|^2 - sum |S_c|^2;
- each group's own |S_c|^2 adds n_c tr(Sigma) (N - n_c)/N on top of n_c^2 times that;

two equations, two unknowns (the many-batch form of their appendix A.1's two-batch estimator).
Here tr(Sigma) is the per-sample gradient variance of the training set (divisor N - 1) and |G|^2 the
full-batch gradient's squared norm, so a probe of the whole training set in groups of one is exact.

Standard errors come from a delete-one-group jackknife; the interval of the ratio from Fieller's
theorem, which is honest when |G|^2 is barely above its noise: the upper end is then unbounded.
|G|^2 is the hard part: its noise is about sqrt(2 tr(Sigma^2))/P, so the probe must be a few
times B_simple for a tight interval; one wider than STABLE_RATIO (schema.analysis) is
"not yet stable".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from tui_lab.core.evaluation import LossFn

GROUPS = 32  # jackknife groups: enough for a steady variance, few enough to keep each group big
T_QUANTILE = 2.04  # Student's t at 97.5% with GROUPS - 1 degrees of freedom: 95% intervals
PER_SAMPLE_CHUNK = 128  # samples whose gradients are held at once (128 x parameters floats)


@dataclass(frozen=True)
class NoiseEstimate:
    """|G|^2 and tr(Sigma) at one set of weights, with their jackknife standard errors."""

    grad_sq: float
    grad_sq_se: float
    trace_sigma: float
    trace_sigma_se: float
    covariance: float  # jackknife covariance of the two, for the ratio's interval
    probe_size: int
    n_train: int

    @property
    def b_simple(self) -> float | None:
        """tr(Sigma)/|G|^2; None while the |G|^2 estimate is not positive (noise swamps it)."""
        return self.trace_sigma / self.grad_sq if self.grad_sq > 0 else None

    def interval(self) -> tuple[float, float]:
        """95% interval of B_simple (Fieller); the upper end is inf while |G|^2 could be 0."""
        g, t, z2 = self.grad_sq, self.trace_sigma, T_QUANTILE**2
        # B is inside where (t - B g)^2 <= z^2 var(t - B g): a quadratic a B^2 - 2 b B + c <= 0.
        a = g * g - z2 * self.grad_sq_se**2
        b = t * g - z2 * self.covariance
        c = t * t - z2 * self.trace_sigma_se**2
        disc = b * b - a * c
        if a > 0 and g > 0:  # |G|^2 clearly above 0: a bounded interval around the estimate
            root = math.sqrt(max(disc, 0.0))
            return max((b - root) / a, 0.0), (b + root) / a
        # Otherwise the interval reaches to infinity (for a < 0 the set lies outside the roots,
        # (b - root)/a being the upper one; with disc < 0 every B fits the data).
        low = (b - math.sqrt(disc)) / a if a < 0 and disc >= 0 else 0.0
        return max(low, 0.0), math.inf


@dataclass(frozen=True)
class ProbeSums:
    """What one probe leaves: per group, its gradient sum S_c, the sum of its units' squared
    gradient norms W_c, and sum over its units of size^2 (a unit is one sample, or the whole
    group when per-sample gradients cannot be taken)."""

    sums: Tensor  # [m, D] on the model's device
    unit_sq_norms: Tensor  # [m]
    unit_size_sq: Tensor  # [m]
    sizes: Tensor  # [m]

    @classmethod
    def of_samples(
        cls, chunks: Iterable[Tensor], probe_size: int, groups: int = GROUPS
    ) -> ProbeSums:
        """Per-sample gradient rows ([k, D] chunks, ``probe_size`` rows in all) into groups."""
        m = min(groups, probe_size)
        sums = norms = None
        first = 0
        for rows in chunks:
            group_of = torch.arange(first, first + len(rows), device=rows.device) * m // probe_size
            if sums is None or norms is None:
                sums = rows.new_zeros(m, rows.shape[1])
                norms = rows.new_zeros(m)
            sums.index_add_(0, group_of, rows)
            norms.index_add_(0, group_of, rows.square().sum(1))
            first += len(rows)
        assert sums is not None and norms is not None and first == probe_size
        sizes = torch.arange(probe_size).mul(m).div(probe_size, rounding_mode="floor")
        sizes = torch.bincount(sizes, minlength=m).double()
        return cls(sums, norms.double().cpu(), sizes, sizes)


def per_sample_gradients_work(model: nn.Module) -> bool:
    """Per-sample gradients need every layer to treat samples independently (no batch norm)."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def sample_gradients(
    model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, chunk: int = PER_SAMPLE_CHUNK
) -> Iterator[Tensor]:
    """Each sample's own loss gradient, flattened, ``chunk`` samples ([chunk, D]) at a time."""
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())

    def sample_loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (p, buffers), (xi[None],)), yi[None])

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    for xs, ys in zip(x.split(chunk), y.split(chunk), strict=True):
        yield torch.cat([g.reshape(len(ys), -1) for g in per_sample(params, xs, ys).values()], 1)


def probe_gradients(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    *,
    groups: int = GROUPS,
    chunk: int = PER_SAMPLE_CHUNK,
    per_sample: bool | None = None,
) -> ProbeSums:
    """Gradients of the probe (x, y), per sample where the model allows, summed by group.

    ``loss_fn`` returns the mean loss over its inputs. Parameters' ``.grad`` and buffers are
    left as they were, so a probe can be taken between any two optimizer steps. ``chunk`` bounds
    how many samples' gradients are held at once. ``per_sample`` (default: where it works)
    False takes one gradient per group instead: tr(Sigma) is then less precise.
    """
    if per_sample_gradients_work(model) if per_sample is None else per_sample:
        return ProbeSums.of_samples(sample_gradients(model, loss_fn, x, y, chunk), len(y), groups)
    m = min(groups, len(y))
    sizes = torch.tensor([len(part) for part in torch.arange(len(y)).tensor_split(m)]).double()
    sums = _per_group(model, loss_fn, x, y, sizes, chunk)
    return ProbeSums(sums, sums.square().sum(1).double().cpu(), sizes.square(), sizes)


def _per_group(model, loss_fn, x, y, sizes, chunk) -> Tensor:
    """Group sums by ordinary backward passes (batch norm: statistics per group, as a batch)."""
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [b.clone() for b in model.buffers()]  # running statistics must not see the probe
    sums = []
    for xs, ys in zip(x.split(sizes.long().tolist()), y.split(sizes.long().tolist()), strict=True):
        total = None
        for xm, ym in zip(xs.split(chunk), ys.split(chunk), strict=True):
            grads = torch.autograd.grad(loss_fn(model(xm), ym) * len(ym), params)
            flat = torch.cat([g.reshape(-1) for g in grads])
            total = flat if total is None else total + flat
        sums.append(total)
    with torch.no_grad():
        for b, old in zip(model.buffers(), saved, strict=True):
            b.copy_(old)
    return torch.stack(sums)


def estimate(probe: ProbeSums, n_train: int) -> NoiseEstimate:
    """|G|^2 and tr(Sigma) from a probe drawn without replacement from ``n_train`` samples."""
    sums = probe.sums.double()  # |S|^2 - sum |g_i|^2 cancels: keep the digits
    gram = (sums @ sums.T).cpu()  # the host sync: an m x m matrix
    parts = torch.stack([probe.sizes, probe.unit_sq_norms, probe.unit_size_sq]).double().cpu()
    total, totals = gram.sum(), parts.sum(1, keepdim=True)
    grad_sq, trace = (float(v) for v in _moments(total, totals, n_train))
    m = gram.shape[0]
    probe_size = int(totals[0])
    if m < 3:  # too few groups to say how uncertain it is
        nan = math.nan
        return NoiseEstimate(grad_sq, nan, trace, nan, nan, probe_size, n_train)
    # Delete-one-group jackknife: |S - S_c|^2 = |S|^2 - 2 S.S_c + |S_c|^2, from the Gram matrix.
    leave_out = torch.stack(
        _moments(total - 2 * gram.sum(1) + gram.diagonal(), totals - parts, n_train), 1
    )
    deviations = leave_out - leave_out.mean(0)
    # Jackknife covariance, times the finite-population correction: a probe of the whole
    # training set in groups of one is exact.
    cov = (m - 1) / m * (deviations.T @ deviations) * (1 - probe_size / n_train)
    return NoiseEstimate(
        grad_sq=grad_sq,
        grad_sq_se=math.sqrt(max(cov[0, 0].item(), 0.0)),
        trace_sigma=trace,
        trace_sigma_se=math.sqrt(max(cov[1, 1].item(), 0.0)),
        covariance=cov[0, 1].item(),
        probe_size=probe_size,
        n_train=n_train,
    )


def _moments(square: Tensor, parts: Tensor, n_train: int) -> tuple[Tensor, Tensor]:
    """(|G|^2, tr(Sigma)) from |sum of the gradients|^2 and the (P, sum W, sum unit size^2)
    rows of ``parts``; element-wise, for the whole probe or each leave-one-out at once."""
    probe, within, size_sq = parts
    # Ordered pairs of distinct samples in different units: E[g_i . g_j] = |G|^2 - tr(Sigma)/N.
    pair_dot = (square - within) / (probe**2 - size_sq)
    # Each unit's |U|^2 holds its samples' |g_i|^2 (mean |G|^2 + tr(Sigma)(N-1)/N) and its
    # within-unit pairs; their difference from pair_dot is tr(Sigma).
    trace = (within - (size_sq - probe) * pair_dot) / probe - pair_dot
    return pair_dot + trace / n_train, trace


def measure(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, n_train: int) -> NoiseEstimate:
    """The noise scale at the model's weights, from a probe (x, y) of a training set of n_train."""
    return estimate(probe_gradients(model, loss_fn, x, y), n_train)
