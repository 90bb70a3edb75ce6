"""``bslab paraboloid``: the paraboloid lab from the command line, with flags over a preset.

Without a preset it starts from the lab's defaults; each flag replaces one field, so e.g.
``bslab paraboloid --optimizers rprop,rmsprop --batch-sizes 1,full`` shows the brief's point
about Rprop and mini-batches in a second.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from tui_lab.cli import command_parser
from tui_lab.cli.sketch import add_size_flags, plot_size, show_paraboloid
from tui_lab.errors import BadInput, from_validation_error
from tui_lab.schema import ParaboloidPreset
from tui_lab.schema.paraboloid import batch_size_list, comma_list

COMMAND_LINE = "command line"


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="bslab paraboloid",
        description="Run optimizers at several batch sizes on a linear neuron's error surface "
        "(a paraboloid) and print their paths over its contours.",
    )
    p.add_argument("preset", nargs="?", type=Path, help="paraboloid preset (default: the lab's)")
    p.add_argument("--optimizers", type=comma_list, help="e.g. sgd,rprop,rmsprop")
    p.add_argument("--batch-sizes", type=batch_size_list, help="e.g. 1,16,full")
    p.add_argument("--condition-number", type=float, help="how elongated the ellipses are")
    p.add_argument("--noise", type=float, help="noise on the targets (0: every sample agrees)")
    p.add_argument("--lr", type=float, help="learning rate of every optimizer")
    p.add_argument("--epochs", type=int)
    add_size_flags(p)
    p.add_argument("--out", type=Path, help="also save the session into this folder")
    return p


def build_preset(args: argparse.Namespace) -> ParaboloidPreset:
    """The preset file (or the defaults) with the flags applied; errors name the flag."""
    from tui_lab.core.storage import load_preset

    preset = load_preset(args.preset) if args.preset else ParaboloidPreset(kind="paraboloid")
    if not isinstance(preset, ParaboloidPreset):
        raise BadInput(
            "a training preset: run it with bslab --headless, or give a paraboloid preset "
            '("kind": "paraboloid")',
            source=args.preset,
            field="kind",
        )
    changes: dict[str, Any] = {
        field: value
        for field, value in (
            ("batch_sizes", args.batch_sizes),
            ("condition_number", args.condition_number),
            ("noise", args.noise),
            ("epochs", args.epochs),
        )
        if value is not None
    }
    if args.optimizers is not None or args.lr is not None:
        optimizers = (
            [{"name": name} for name in args.optimizers]
            if args.optimizers is not None
            else [o.model_dump(exclude_none=True) for o in preset.optimizers]
        )
        changes["optimizers"] = [o if args.lr is None else {**o, "lr": args.lr} for o in optimizers]
    try:
        return preset.updated(**changes)
    except ValidationError as error:
        bad = from_validation_error(error, COMMAND_LINE, {**preset.model_dump(), **changes})
        # The fields the flags set are the flags' names with underscores: name the flag.
        flag = re.sub(r"^\w+", lambda m: "--" + m.group().replace("_", "-"), bad.field)
        raise BadInput(
            bad.message, source=COMMAND_LINE, field=flag.removeprefix("(top level)")
        ) from None


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    preset = build_preset(args)
    console = Console()
    width, height = plot_size(args, console)
    from tui_lab.analysis.paraboloid import run_paraboloid
    from tui_lab.core.storage import ensure_writable_dir, save_paraboloid_session

    if args.out is not None:
        ensure_writable_dir(args.out)  # fail before computing, not after
    session = run_paraboloid(preset)
    show_paraboloid(session, console, width, height)
    if args.out is not None:
        path = save_paraboloid_session(session, args.out)
        console.print(f"saved → {path}")
    return 0
