"""``bslab interpolate``: loss and accuracy on the line through two sessions' final weights.

Keskar et al. 2017: θ(α) = (1 − α)·θ_a + α·θ_b for α from −1 to 2. Around a sharp minimum the
loss climbs fast as α leaves it; around a flat one it stays low for a while. Both sessions must
be the same model on the same data, or the line between them means nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from tui_lab.analysis.interpolation import DEFAULT_TRAIN_SAMPLES, LANDMARKS, compute
from tui_lab.cli import command_parser
from tui_lab.cli.sketch import add_size_flags, plot_size, print_lines
from tui_lab.core.storage import LoadedSession
from tui_lab.errors import BadInput
from tui_lab.report.interpolation import sharpness_lines
from tui_lab.schema.trajectory import MAX_ALPHAS

if TYPE_CHECKING:
    pass

PLOT_HEIGHT = 25


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
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
    from tui_lab.core.devices import resolve_device
    from tui_lab.core.storage import ensure_writable_dir, load_session, save_model
    from tui_lab.report.interpolation import render_interpolation

    if args.out is not None:
        ensure_writable_dir(args.out.parent)  # fail before computing, not after
    console = Console()
    width, height = plot_size(args, console)
    a, b = (LoadedSession(p, load_session(p)) for p in (args.session_a, args.session_b))
    device = resolve_device(args.device, field="--device")
    # seconds to a minute on a CPU: say what is happening rather than show a blank screen
    with console.status(
        f"Evaluating both networks at {args.points} points on the line through their weights…"
    ):
        interp = compute(
            a,
            b,
            points=args.points,
            train_samples=args.train_samples,
            device=device,
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
