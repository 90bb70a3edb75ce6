"""The noise-scale estimator against linear regression, where tr(Sigma) and |G|^2 are known."""

import pytest
import torch
from torch import nn

from tui_lab.analysis.noise_scale import (
    NoiseScaleEstimator,
    TwoBatchSample,
    measure_two_batch,
)

DIM, NOISE = 8, 1.0
TOLERANCE = 0.10  # relative; ~4 standard deviations of these averages (sd 2.5%, 20 seeds)


def half_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * (prediction - target).square().mean()


def linear_model(weights: torch.Tensor) -> nn.Linear:
    model = nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(weights)
    return model


def test_matches_closed_form_for_linear_regression_with_gaussian_noise():
    # x ~ N(0, I), y = x.w* + N(0, s^2), loss (x.w - y)^2 / 2; with d = w - w* at fixed w:
    # G = d, so |G|^2 = |d|^2, and tr(Sigma) = (dim + 1)|d|^2 + dim s^2 (Gaussian fourth moments).
    gen = torch.Generator().manual_seed(0)
    true_w = torch.randn(DIM, generator=gen)
    offset = torch.randn(DIM, generator=gen)
    offset /= offset.norm()
    model = linear_model(true_w + offset)
    grad_sq, trace_sigma = 1.0, (DIM + 1) + DIM * NOISE**2
    estimator = NoiseScaleEstimator(ema=0.999)
    for _ in range(3000):
        x = torch.randn(32, DIM, generator=gen)
        y = (x @ true_w + NOISE * torch.randn(32, generator=gen)).unsqueeze(1)
        estimator.update(measure_two_batch(model, half_mse, x, y))
    point = estimator.point(epoch=1, step=3000)
    assert point is not None and point.b_simple is not None
    assert point.grad_sq == pytest.approx(grad_sq, rel=TOLERANCE)
    assert point.trace_sigma == pytest.approx(trace_sigma, rel=TOLERANCE)
    assert point.b_simple == pytest.approx(trace_sigma / grad_sq, rel=TOLERANCE)


def test_full_batch_estimate_matches_exact_enumeration_over_the_data_set():
    # Full batch: the halves are random halves of the data set. Per-sample gradients
    # x_i (x_i.w - y_i) are enumerated exactly; the finite population's noise is tr(Sigma).
    gen = torch.Generator().manual_seed(1)
    n = 400
    x = torch.randn(n, DIM, generator=gen) * torch.linspace(0.2, 3.0, DIM)
    y = (x @ torch.randn(DIM, generator=gen) + torch.randn(n, generator=gen)).unsqueeze(1)
    w = torch.randn(DIM, generator=gen)
    per_sample = x * (x @ w - y.squeeze(1)).unsqueeze(1)
    true_grad = per_sample.mean(0)
    trace_sigma = (per_sample - true_grad).square().sum(1).mean().item()
    model = linear_model(w)
    estimator = NoiseScaleEstimator(ema=0.999)
    for _ in range(1500):
        order = torch.randperm(n, generator=gen)
        estimator.update(
            measure_two_batch(model, half_mse, x.index_select(0, order), y.index_select(0, order))
        )
    grad_sq, estimated_trace = estimator.smoothed()
    assert grad_sq == pytest.approx(true_grad.square().sum().item(), rel=TOLERANCE)
    assert estimated_trace == pytest.approx(trace_sigma, rel=TOLERANCE)


@pytest.mark.parametrize(("batch", "micro"), [(2, None), (7, None), (64, None), (64, 10)])
def test_leaves_the_full_batch_gradient_and_loss_for_the_optimizer(batch, micro):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    x, y = torch.randn(batch, 5), torch.randint(0, 3, (batch,))
    loss = nn.functional.cross_entropy(model(x), y)
    expected = torch.autograd.grad(loss, list(model.parameters()))
    sample = measure_two_batch(model, nn.functional.cross_entropy, x, y, micro_batch_size=micro)
    for p, g in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g)
    torch.testing.assert_close(sample.loss, loss.detach())
    torch.testing.assert_close(sample.big_sq_norm, sum(g.square().sum() for g in expected))


def test_batch_of_one_cannot_be_measured():
    with pytest.raises(ValueError, match="cannot be split"):
        measure_two_batch(nn.Linear(2, 1), half_mse, torch.randn(1, 2), torch.randn(1, 1))


def test_no_estimate_before_data_or_while_noise_swamps_the_signal():
    estimator = NoiseScaleEstimator()
    assert estimator.estimate is None and estimator.point(1, 0) is None
    # Half-batch gradients far longer than the whole batch's: the |G|^2 estimate is negative.
    sample = TwoBatchSample(16, 32, torch.tensor(10.0), torch.tensor(1.0), torch.tensor(0.0))
    estimator.update(sample)
    assert estimator.estimate is None
    point = estimator.point(1, 5)
    assert point is not None and point.b_simple is None and point.trace_sigma > 0
