"""Between two solutions: loss and accuracy along the line through two final weights.

Keskar et al. 2017 (figure 3): with θ(α) = (1 − α)·θ_a + α·θ_b for α from −1 to 2, a sharp
minimum shows as a narrow dip around its end of the line and a flat one as a wide basin.
Typically θ_a is a small-batch solution and θ_b a large-batch one of the same model and data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tui_lab.core.evaluation import LossFn, evaluate
from tui_lab.core.storage import LoadedSession
from tui_lab.core.weights import preserved_weights
from tui_lab.errors import BadInput
from tui_lab.schema import Session, UserModel
from tui_lab.schema.trajectory import Interpolation

# α from −1 to 2 in steps of 0.1, as in Keskar et al. 2017; 0 and 1 exactly.
DEFAULT_ALPHAS = [-1 + i / 10 for i in range(31)]


Batch = tuple[torch.Tensor, torch.Tensor]


def interpolate(
    model: torch.nn.Module,
    theta_a: Mapping[str, torch.Tensor],
    theta_b: Mapping[str, torch.Tensor],
    train: Batch,
    val: Batch,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    loss_fn: LossFn = F.cross_entropy,
    sessions: tuple[str, str] = ("a", "b"),
    labels: tuple[str, str] = ("", ""),
) -> Interpolation:
    """Loss and accuracy on `train` and `val` (fixed subsets on the model's device) at each α.

    `theta_a` and `theta_b` are state dicts of `model`'s architecture (e.g. from `load_weights`);
    floating-point entries are interpolated, integer buffers are taken from θ_a. The model is
    evaluated in eval mode and its own weights are restored afterwards, also on error.
    """
    device = next(model.parameters()).device
    expected = {k: v.shape for k, v in model.state_dict().items()}
    for name, theta in (("a", theta_a), ("b", theta_b)):
        if {k: v.shape for k, v in theta.items()} != expected:
            raise ValueError(f"the weights of session {name} do not fit this model")
    # Copies: the caller may pass the live model's own state dict, which loading would overwrite.
    theta_a = {k: v.to(device, copy=True) for k, v in theta_a.items()}
    theta_b = {k: v.to(device, copy=True) for k, v in theta_b.items()}
    results: list[torch.Tensor] = []
    with preserved_weights(model):
        for alpha in alphas:
            model.load_state_dict(_between(theta_a, theta_b, alpha))
            metrics = (*evaluate(model, *train, loss_fn), *evaluate(model, *val, loss_fn))
            results.append(torch.stack(metrics))
    train_loss, train_accuracy, val_loss, val_accuracy = torch.stack(results).T.cpu().tolist()
    return Interpolation(
        session_a=sessions[0],
        session_b=sessions[1],
        label_a=labels[0],
        label_b=labels[1],
        alphas=list(alphas),
        train_loss=_finite_or_none(train_loss),
        train_accuracy=_finite_or_none(train_accuracy, train_loss),
        val_loss=_finite_or_none(val_loss),
        val_accuracy=_finite_or_none(val_accuracy, val_loss),
        train_samples=len(train[0]),
        val_samples=len(val[0]),
    )


def _between(
    theta_a: Mapping[str, torch.Tensor], theta_b: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    return {
        k: torch.lerp(a, theta_b[k], alpha) if a.is_floating_point() else a
        for k, a in theta_a.items()
    }


def _finite_or_none(values: list[float], losses: list[float] | None = None) -> list[float | None]:
    """None where the loss is not finite: the weights diverged there, accuracy is meaningless."""
    losses = values if losses is None else losses
    return [v if math.isfinite(loss) else None for v, loss in zip(values, losses, strict=True)]


# Always evaluated, whatever --points: the two solutions and half a unit either side of each.
LANDMARKS = (-0.5, 0.0, 0.5, 1.0, 1.5)


# Config fields that must agree: the same architecture on the same samples (the seed picks
# the train/validation split of digits and the training subset).
SAME_PROBLEM = ("dataset", "model", "train_subset", "seed")


DEFAULT_TRAIN_SAMPLES = 2000


def alphas(points: int) -> list[float]:
    """``points`` evenly spaced α in [−1, 2], plus the landmarks."""
    spaced = np.linspace(-1.0, 2.0, points)
    return np.unique(np.round(np.concatenate([spaced, LANDMARKS]), 6)).tolist()


def check_same_problem(a: LoadedSession, b: LoadedSession) -> None:
    if a.session.id == b.session.id:
        raise BadInput(f"the same session as {a.path}: give two different runs", source=b.path)
    for field in SAME_PROBLEM:
        value_a, value_b = getattr(a.session.config, field), getattr(b.session.config, field)
        if value_a != value_b:
            raise BadInput(
                f"{value_b!r} here but {value_a!r} in {a.path}: interpolation needs the same "
                "model on the same data",
                source=b.path,
                field=f"config.{field}",
            )


def final_weights(loaded: LoadedSession, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The run's saved weights, checked to be ``model``'s own (names, shapes, dtypes)."""
    from tui_lab.core.weights import check_weights_match, load_weights

    if loaded.session.weights_file is None:
        raise BadInput(
            f"no final weights were saved with this run (status: {loaded.session.status})",
            source=loaded.path,
            field="weights_file",
        )
    path = loaded.path.parent / loaded.session.weights_file  # a plain name: stays beside it
    weights = load_weights(path)
    check_weights_match(model, weights, path)
    return weights


def solution_label(session: Session) -> str:
    """The run a solution came from, with its learning rate: what sets sharpness apart."""
    return f"{session.config.label()} lr={session.config.lr:.3g}"


def compute(
    a: LoadedSession,
    b: LoadedSession,
    *,
    points: int,
    train_samples: int,
    device: str,
    data_dir: Path | None,
) -> Interpolation:
    """Rebuild the model and data of the sessions and evaluate the line between them."""

    from tui_lab.analysis.interpolation import interpolate
    from tui_lab.core.data import load_data
    from tui_lab.core.models import seeded_model

    check_same_problem(a, b)
    config = a.session.config
    if isinstance(config.model, UserModel):
        raise BadInput(
            f"the model is the user's own code ({config.model}), and bslab never runs code "
            "that only a session file names",
            source=str(a.path),
            field="config.model",
        )
    data = load_data(
        config.dataset,
        data_dir=data_dir or config.data_dir,
        seed=config.seed,
        train_subset=config.train_subset,
        source=str(a.path),
    )
    data = data.to(device)
    train = data.train_sample(train_samples)
    val = (data.val_x, data.val_y)
    model = seeded_model(config.model, data, config.seed, device)
    theta_a, theta_b = final_weights(a, model), final_weights(b, model)
    try:
        return interpolate(
            model,
            theta_a,
            theta_b,
            train,
            val,
            alphas=alphas(points),
            sessions=(a.session.id, b.session.id),
            labels=(solution_label(a.session), solution_label(b.session)),
        )
    except ValueError as error:  # weights of another shape than the config's model
        raise BadInput(str(error), source=f"{a.path}, {b.path}", field="weights_file") from None
