"""The lab's noise-scale measurement against the exact values, on real LeNet runs on the digits.

At checkpoints of runs at batch 8, 32, 128 and the full batch, every training sample's own
gradient is taken once: exact |G|^2 is the norm^2 of their mean, exact tr(Sigma) their variance.
The lab's estimate sees only the gradients of its default probe (a random 1,024 of the 1,438
samples), grouped and summed as the engine's measurement does.
"""

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from tui_lab.analysis.noise_scale import ProbeSums, estimate, sample_gradients
from tui_lab.core.data import load_data
from tui_lab.core.models import build_model
from tui_lab.schema.analysis import NoiseScaleSettings

TOLERANCE = 0.20
# (batch size, optimizer steps done at each checkpoint), from a third of an epoch to one epoch
# of batch 8; B_simple falls from ~160 at the start to ~15 and rises again to ~30 along these.
# Each checkpoint takes every sample's gradient once (about 1.5 s on a quiet core).
RUNS = [(8, [60, 180]), (32, [40]), (128, [10]), (None, [3, 8])]


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def train(model, optimizer, data, batch: int, steps: int, shuffle: torch.Generator) -> None:
    """SGD steps on shuffled batches (an epoch's last, short batch is dropped)."""
    per_epoch = data.n_train // batch
    order = torch.randperm(data.n_train, generator=shuffle)
    for step in range(steps):
        if step and step % per_epoch == 0:
            order = torch.randperm(data.n_train, generator=shuffle)
        idx = order[(step % per_epoch) * batch :][:batch]
        optimizer.zero_grad()
        F.cross_entropy(model(data.train_x[idx]), data.train_y[idx]).backward()
        optimizer.step()


class ExactNoise:
    """Sums over every sample's gradient, taken while the probe's gradients pass through."""

    def __init__(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.sq_norms = 0.0

    def probe(self, chunks: Iterator[torch.Tensor], keep: torch.Tensor) -> Iterator[torch.Tensor]:
        start = 0
        for rows in chunks:
            self.total = self.total + rows.sum(0, dtype=torch.float64)
            self.sq_norms += rows.double().square().sum().item()
            yield rows[keep[start : start + len(rows)]]
            start += len(rows)

    def result(self, n: int) -> tuple[float, float]:
        """(|G|^2, tr(Sigma)): the mean's norm^2, and the variance with divisor n - 1."""
        grad_sq = (self.total / n).square().sum().item()
        return grad_sq, (self.sq_norms - n * grad_sq) / (n - 1)


@pytest.mark.parametrize(("batch", "checkpoints"), RUNS)
def test_estimate_within_20_percent_of_exact_at_every_checkpoint(digits, batch, checkpoints):
    n = digits.n_train
    batch = batch or n
    torch.manual_seed(0)
    model = build_model("lenet5", digits.input_shape, digits.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)  # the quickstart's
    shuffle, probes = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    probe_size = min(NoiseScaleSettings().probe_size, n)
    done = 0
    for steps in checkpoints:
        train(model, optimizer, digits, batch, steps - done, shuffle)
        done = steps
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=probes)[:probe_size]] = True
        exact = ExactNoise()
        chunks = sample_gradients(model, F.cross_entropy, digits.train_x, digits.train_y)
        measured = estimate(ProbeSums.of_samples(exact.probe(chunks, keep), probe_size), n)
        grad_sq, trace = exact.result(n)
        where = f"batch {batch}, step {steps}: exact B_simple {trace / grad_sq:.0f}"
        assert measured.grad_sq == pytest.approx(grad_sq, rel=TOLERANCE), where
        assert measured.trace_sigma == pytest.approx(trace, rel=TOLERANCE), where
        assert measured.b_simple == pytest.approx(trace / grad_sq, rel=TOLERANCE), where
