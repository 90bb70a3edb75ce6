"""``bslab interpolate``: loss and accuracy on the line through two sessions' final weights.

Keskar et al. 2017: θ(α) = (1 − α)·θ_a + α·θ_b for α from −1 to 2. Around a sharp minimum the
loss climbs fast as α leaves it; around a flat one it stays low for a while. Both sessions must
be the same model on the same data, or the line between them means nothing.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console

from tui_lab.commands.sketch import add_size_flags, plot_size, print_lines
from tui_lab.errors import BadInput
from tui_lab.schema import Interpolation, Session
from tui_lab.schema.trajectory import MAX_ALPHAS
from tui_lab.storage import LoadedSession

if TYPE_CHECKING:
    import torch

# Always evaluated, whatever --points: the two solutions and half a unit either side of each.
LANDMARKS = (-0.5, 0.0, 0.5, 1.0, 1.5)
SHARPNESS_STEP = 0.5
# Config fields that must agree: the same architecture on the same samples (the seed picks
# the train/validation split of digits and the training subset).
SAME_PROBLEM = ("dataset", "model", "train_subset", "seed")
DEFAULT_TRAIN_SAMPLES = 2000
PLOT_HEIGHT = 25


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


def final_weights(loaded: LoadedSession) -> dict[str, torch.Tensor]:
    from tui_lab.weights import load_weights

    if loaded.session.weights_file is None:
        raise BadInput(
            f"no final weights were saved with this run (status: {loaded.session.status})",
            source=loaded.path,
            field="weights_file",
        )
    return load_weights(loaded.path.parent / loaded.session.weights_file)


def run_label(session: Session) -> str:
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
    import torch

    from tui_lab.data import load_data
    from tui_lab.models import build_model
    from tui_lab.sketches.interpolation import interpolate

    check_same_problem(a, b)
    theta_a, theta_b = final_weights(a), final_weights(b)
    config = a.session.config
    data = load_data(
        config.dataset,
        data_dir=data_dir or config.data_dir,
        seed=config.seed,
        train_subset=config.train_subset,
        source=str(a.path),
    )
    n = min(train_samples, data.n_train)
    keep = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(0))[:n]
    train = (data.train_x[keep].to(device), data.train_y[keep].to(device))
    val = (data.val_x.to(device), data.val_y.to(device))
    model = build_model(config.model, data.input_shape, data.num_classes).to(device)
    try:
        return interpolate(
            model,
            theta_a,
            theta_b,
            train,
            val,
            alphas=alphas(points),
            sessions=(a.session.id, b.session.id),
            labels=(run_label(a.session), run_label(b.session)),
        )
    except ValueError as error:  # weights of another shape than the config's model
        raise BadInput(str(error), source=f"{a.path}, {b.path}", field="weights_file") from None


def loss_at(interp: Interpolation, alpha: float) -> float:
    """Training loss at a landmark α; infinite where the weights diverged."""
    index = min(range(len(interp.alphas)), key=lambda i: abs(interp.alphas[i] - alpha))
    loss = interp.train_loss[index]
    return math.inf if loss is None else loss


def sharpness_lines(interp: Interpolation) -> list[str]:
    """How much the training loss rises half a unit either side of each solution.

    A solution whose loss falls on one side is not at a minimum along this line (the run had
    not converged), so no verdict on sharpness is given for it.
    """
    lines = [
        f"training loss change at α ± {SHARPNESS_STEP} around each solution (higher = sharper):"
    ]
    rises = {}
    for name, label, centre in (("a", interp.label_a, 0.0), ("b", interp.label_b, 1.0)):
        bottom = loss_at(interp, centre)
        sides = {
            a: loss_at(interp, a) - bottom
            for a in (centre - SHARPNESS_STEP, centre + SHARPNESS_STEP)
        }
        changes = ", ".join(f"{rise:+.4g} at α={alpha:g}" for alpha, rise in sides.items())
        lines.append(f"  {name} = {label}: loss {bottom:.4g}; {changes}")
        falls = [alpha for alpha, rise in sides.items() if rise < 0]
        if falls:
            lines.append(
                f"    not a minimum along this line (the loss falls towards α={falls[0]:g}): "
                "the run had not converged"
            )
        else:
            rises[name] = sum(sides.values()) / 2
    if len(rises) == 2:
        sharper, flatter = sorted(rises, key=rises.__getitem__, reverse=True)
        ratio = rises[sharper] / rises[flatter] if rises[flatter] > 0 else math.inf
        lines.append(
            f"  → {sharper} sits in the sharper minimum: its loss rises {ratio:.3g}× as much "
            f"(mean {rises[sharper]:+.4g} against {rises[flatter]:+.4g})"
        )
    return lines


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bslab interpolate",
        description="Plot training and validation loss/accuracy along the line through the "
        "final weights of two sessions (α from -1 to 2): sharp versus flat minima.",
    )
    parser.add_argument("session_a", type=Path, help="session at α = 0 (e.g. small batch)")
    parser.add_argument("session_b", type=Path, help="session at α = 1 (e.g. large batch)")
    parser.add_argument(
        "--points", type=int, default=31, help="evenly spaced α values (default 31: steps of 0.1)"
    )
    parser.add_argument(
        "--train-samples",
        type=int,
        default=DEFAULT_TRAIN_SAMPLES,
        help="fixed training samples evaluated at each α (the validation set is used whole)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N], mps")
    parser.add_argument("--data-dir", type=Path, help="folder with local dataset files")
    parser.add_argument("--out", type=Path, help="save the interpolation as JSON")
    add_size_flags(parser)
    args = parser.parse_args(argv)
    extra = len(LANDMARKS)
    if not 2 <= args.points <= MAX_ALPHAS - extra:
        raise BadInput(f"must be between 2 and {MAX_ALPHAS - extra}", field="--points")
    if args.train_samples < 1:
        raise BadInput("must be at least 1", field="--train-samples")
    from tui_lab.devices import resolve_device
    from tui_lab.sketches.interpolation import render_interpolation
    from tui_lab.storage import ensure_writable_dir, load_session, save_model

    if args.out is not None:
        ensure_writable_dir(args.out.parent)  # fail before computing, not after
    console = Console()
    width, height = plot_size(args, console)
    a, b = (LoadedSession(p, load_session(p)) for p in (args.session_a, args.session_b))
    interp = compute(
        a,
        b,
        points=args.points,
        train_samples=args.train_samples,
        device=resolve_device(args.device, field="--device"),
        data_dir=args.data_dir,
    )
    print_lines(console, render_interpolation(interp, width, height or PLOT_HEIGHT).splitlines())
    console.print(
        f"solid: {interp.train_samples} training samples, dotted: {interp.val_samples} "
        "validation samples; red: log10 loss (left axis), blue: accuracy (right axis)",
        style="dim",
    )
    for line in sharpness_lines(interp):
        console.print(line, highlight=False)
    if args.out is not None:
        save_model(interp, args.out)
        console.print(f"saved → {args.out}")
    return 0
