"""The learning-rate range test: a rate that trains, stops on divergence, weights restored."""

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from tui_lab.analysis.lr_finder import lr_range_test, suggest_lr

DIM, CLASSES = 20, 5


def blob_batches(seed: int):
    """Endless batches of a 5-class Gaussian-blob problem: a loss that falls, then blows up."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(CLASSES, DIM, generator=gen)
    while True:
        y = torch.randint(0, CLASSES, (32,), generator=gen)
        yield centers[y] + torch.randn(32, DIM, generator=gen), y


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(DIM, 32), nn.ReLU(), nn.Linear(32, CLASSES))


def loss_after_training(model: nn.Module, lr: float, seed: int, steps: int = 100) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batches = blob_batches(seed)
    for x, y in itertools.islice(batches, steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    x, y = next(batches)
    return F.cross_entropy(model(x), y).item()


def test_suggests_a_rate_that_trains_and_stops_once_the_loss_blows_up():
    torch.manual_seed(0)
    model = mlp()
    start = {k: v.clone() for k, v in model.state_dict().items()}

    def sgd(lr: float) -> torch.optim.SGD:
        return torch.optim.SGD(model.parameters(), lr=lr)

    result = lr_range_test(model, sgd, blob_batches(0), F.cross_entropy)
    assert result.stop_reason == "diverged" and result.stopped_early
    assert len(result.lrs) < 100 and result.suggested_lr is not None
    assert result.lrs[0] < result.suggested_lr < result.lrs[-1]
    # The suggestion trains far better than a timid rate, from the same starting weights.
    suggested = loss_after_training(model, result.suggested_lr, seed=1)
    model.load_state_dict(start)
    timid = loss_after_training(model, 1e-4, seed=1)
    assert suggested < timid / 10


def test_weights_and_mode_are_restored_afterwards():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(DIM, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def adam(lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(model.parameters(), lr=lr)

    lr_range_test(model, adam, blob_batches(0), F.cross_entropy, steps=30)
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)  # running stats included
    assert not model.training


def test_runs_out_of_data_gracefully():
    model = mlp()
    batches = itertools.islice(blob_batches(0), 12)
    result = lr_range_test(
        model, lambda lr: torch.optim.SGD(model.parameters(), lr=lr), batches, F.cross_entropy
    )
    assert result.stop_reason == "out_of_data" and len(result.lrs) == 12


def test_suggestion_is_the_steepest_fall_and_none_if_the_loss_never_falls():
    lrs = [10.0**e for e in range(-6, 1)]
    assert suggest_lr(lrs, [1.0, 0.99, 0.98, 0.5, 0.2, 0.19, 0.3]) == 1e-3
    assert suggest_lr(lrs, [1.0, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]) is None
