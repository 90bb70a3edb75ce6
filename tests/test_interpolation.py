"""Between two solutions: the 1-D loss/accuracy line through two final weights, and its plot."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tui_lab.analysis.interpolation import DEFAULT_ALPHAS, interpolate
from tui_lab.report.interpolation import render_interpolation
from tui_lab.schema.trajectory import Interpolation

SNAPSHOTS = Path(__file__).parent / "snapshots_text"


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=generator)
    return x, (x[:, 0] > 0).long()


def linear_pair() -> tuple[nn.Linear, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """θ_b = −θ_a, so the logits at θ(α) are exactly (1 − 2α) times those of θ_a."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, 0.5], [-2.0, 0.3]]))
        model.bias.copy_(torch.tensor([0.1, -0.2]))
    theta_a = {k: v.clone() for k, v in model.state_dict().items()}
    theta_b = {k: -v for k, v in theta_a.items()}
    return model, theta_a, theta_b


def test_line_through_two_solutions_has_the_losses_computed_by_hand() -> None:
    model, theta_a, theta_b = linear_pair()
    train, val = data(64, seed=0), data(48, seed=1)
    result = interpolate(model, theta_a, theta_b, train, val, sessions=("small", "large"))

    assert result.alphas[0] == -1 and result.alphas[-1] == 2 and len(result.alphas) == 31
    for alpha, train_loss, val_loss, val_accuracy in zip(
        result.alphas, result.train_loss, result.val_loss, result.val_accuracy, strict=True
    ):
        train_logits = (1 - 2 * alpha) * model(train[0])
        val_logits = (1 - 2 * alpha) * model(val[0])
        assert train_loss == pytest.approx(F.cross_entropy(train_logits, train[1]).item(), 1e-4)
        assert val_loss == pytest.approx(F.cross_entropy(val_logits, val[1]).item(), 1e-4)
        if abs(alpha - 0.5) > 1e-3:  # at the midpoint all logits tie
            correct = (val_logits.argmax(1) == val[1]).float().mean().item()
            assert val_accuracy == pytest.approx(correct, abs=1e-4)
    midpoint = result.alphas.index(0.5)
    assert result.train_loss[midpoint] == pytest.approx(math.log(2), abs=1e-4), "zero weights"


def test_the_ends_reproduce_each_models_own_loss_and_the_model_is_restored() -> None:
    torch.manual_seed(0)
    model_a = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2))
    model_b = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2))
    train, val = data(64, seed=0), data(48, seed=1)
    before = {k: v.clone() for k, v in model_a.state_dict().items()}

    # The live model's own state dict as θ_a: loading θ(α) must not corrupt it midway.
    result = interpolate(
        model_a, model_a.state_dict(), model_b.state_dict(), train, val, alphas=[0.0, 0.5, 1.0]
    )

    for index, model in ((0, model_a), (2, model_b)):
        with torch.no_grad():
            outputs = model(train[0])
        assert result.train_loss[index] == pytest.approx(
            F.cross_entropy(outputs, train[1]).item(), 1e-4
        )
        accuracy = (outputs.argmax(1) == train[1]).float().mean().item()
        assert result.train_accuracy[index] == pytest.approx(accuracy, abs=1e-4)
    assert all(torch.equal(model_a.state_dict()[k], before[k]) for k in before)
    assert result.train_samples == 64 and result.val_samples == 48


def test_weights_of_another_model_are_refused() -> None:
    model, theta_a, _ = linear_pair()
    other = nn.Linear(3, 2).state_dict()
    with pytest.raises(ValueError, match="session b"):
        interpolate(model, theta_a, other, data(8, 0), data(8, 1))


def test_diverged_points_are_stored_as_gaps() -> None:
    model, theta_a, _ = linear_pair()
    theta_b = {k: torch.full_like(v, 3e38) for k, v in theta_a.items()}  # logits overflow
    result = interpolate(model, theta_a, theta_b, data(8, 0), data(8, 1), alphas=[0.0, 1.0])
    assert result.train_loss[0] is not None and result.train_loss[1] is None
    assert result.val_accuracy[1] is None
    assert Interpolation.model_validate_json(result.model_dump_json()) == result


def keskar_like() -> Interpolation:
    """A hand-made picture: a wide basin at α = 0 and a sharp one at α = 1."""
    alphas = DEFAULT_ALPHAS
    flat = [0.05 + 0.4 * a**2 for a in alphas]
    sharp = [0.03 + 6 * (a - 1) ** 2 for a in alphas]
    train_loss = [min(f, s) + 0.02 * f * s for f, s in zip(flat, sharp, strict=True)]
    val_loss = [loss * 1.3 + 0.04 for loss in train_loss]
    return Interpolation(
        session_a="s-small",
        session_b="s-large",
        label_a="sgd b=8",
        label_b="sgd b=1024",
        alphas=alphas,
        train_loss=train_loss,
        train_accuracy=[max(0.0, 1 - loss) for loss in train_loss],
        val_loss=val_loss,
        val_accuracy=[max(0.0, 0.97 - loss) for loss in val_loss],
        train_samples=1000,
        val_samples=500,
    )


def test_render_interpolation_matches_snapshot(assert_text_snapshot) -> None:
    """Golden text; regenerate with BSLAB_UPDATE_SNAPSHOTS=1 after a deliberate change."""
    text = render_interpolation(keskar_like(), width=80, height=24, color=False)
    assert "\x1b[" not in text
    assert "sgd b=8" in text and "sgd b=1024" in text
    assert_text_snapshot("test_render_interpolation_matches_snapshot.txt", text)
