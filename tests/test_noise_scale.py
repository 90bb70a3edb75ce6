"""The noise-scale estimator against linear regression, where |G|^2 and tr(Sigma) are known."""

import math

import pytest
import torch
from torch import nn

from tui_lab.analysis.noise_scale import (
    NoiseEstimate,
    estimate,
    measure,
    probe_gradients,
)
from tui_lab.schema.analysis import stable

DIM, N = 6, 400


def half_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * (prediction - target).square().mean()


@pytest.fixture(scope="module")
def problem():
    """A finite training set, a linear model at fixed weights, and the exact values."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N, DIM, generator=gen) * torch.linspace(0.2, 3.0, DIM)
    y = (x @ torch.randn(DIM, generator=gen) + torch.randn(N, generator=gen)).unsqueeze(1)
    model = nn.Linear(DIM, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(DIM, generator=gen))
    per_sample = x * (x @ model.weight.detach().squeeze(0) - y.squeeze(1)).unsqueeze(1)
    mean = per_sample.double().mean(0)
    trace = (per_sample.double() - mean).square().sum().item() / (N - 1)
    return x, y, model, mean.square().sum().item(), trace


def test_a_probe_of_the_whole_set_sample_by_sample_is_exact(problem):
    x, y, model, grad_sq, trace = problem
    result = estimate(probe_gradients(model, half_mse, x, y, groups=N), N)
    assert result.grad_sq == pytest.approx(grad_sq, rel=1e-6)
    assert result.trace_sigma == pytest.approx(trace, rel=1e-6)
    low, high = result.interval()
    assert low == pytest.approx(trace / grad_sq, rel=1e-6) == high  # nothing left to sample


@pytest.mark.parametrize("per_sample", [True, False])
def test_random_probes_are_unbiased_with_honest_errors_and_intervals(problem, per_sample):
    x, y, model, grad_sq, trace = problem
    gen = torch.Generator().manual_seed(2)
    rows = []
    for _ in range(200):
        keep = torch.randperm(N, generator=gen)[:128]
        probe = probe_gradients(model, half_mse, x[keep], y[keep], per_sample=per_sample)
        result = estimate(probe, N)
        low, high = result.interval()
        rows.append(
            [result.grad_sq, result.grad_sq_se, result.trace_sigma, low <= trace / grad_sq <= high]
        )
    grads, ses, traces, inside = torch.tensor(rows, dtype=torch.float64).T
    assert grads.mean().item() == pytest.approx(grad_sq, rel=0.05)  # sd of the mean: ~1.5%
    assert traces.mean().item() == pytest.approx(trace, rel=0.05)
    assert ses.mean().item() == pytest.approx(grads.std().item(), rel=0.25)  # errors are honest
    assert inside.mean().item() > 0.88  # a 95% interval


def test_the_interval_is_unbounded_while_the_gradient_could_be_zero():
    noisy = NoiseEstimate(0.01, 0.02, 5.0, 0.2, 0.0, probe_size=128, n_train=1000)
    low, high = noisy.interval()
    assert math.isinf(high) and low < 500 and not stable(low, high)
    clear = NoiseEstimate(1.0, 0.05, 100.0, 2.0, 0.0, probe_size=128, n_train=1000)
    low, high = clear.interval()
    assert 85 < low < 100 < high < 115 and stable(low, high)
    negative = NoiseEstimate(-0.5, 0.2, 5.0, 0.2, 0.0, probe_size=128, n_train=1000)
    assert negative.b_simple is None and math.isinf(negative.interval()[1])


def test_a_probe_leaves_gradients_and_batch_norm_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    nn.functional.cross_entropy(model(x[:8]), y[:8]).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    stats = [b.clone() for b in model.buffers()]
    result = measure(model, nn.functional.cross_entropy, x, y, n_train=1000)
    assert result.trace_sigma > 0 and result.probe_size == 64
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)
    for b, s in zip(model.buffers(), stats, strict=True):
        torch.testing.assert_close(b, s)
