"""``bslab find-batch PRESET``: the largest batch that fits, and the throughput of each size.

For the preset's data set, model and first optimizer on the chosen device: doubles the batch
until it runs out of memory or reaches the training-set size, then bisects. Every size is tried
with real training steps; running out of memory is recovered from, never a crash.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tui_lab.cli import command_parser
from tui_lab.errors import BadInput
from tui_lab.report.batch_finder import trials_table, verdict
from tui_lab.schema import TrainPreset


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_preset_arguments(parser: argparse.ArgumentParser) -> None:
    """The preset and the flags that say where it runs, shared with ``bslab lr-find``."""
    parser.add_argument("preset", type=Path, help="training preset JSON file")
    parser.add_argument("--device", help="override the preset's device: auto, cpu, cuda[:N], mps")
    parser.add_argument("--data-dir", type=Path, help="folder with local dataset files")


def prepare_preset(args: argparse.Namespace, out_dir: Path | None = None):
    """Load and validate the preset, resolve the device and load the data (as a sweep would).

    Returns a ``PreparedSweep``; ``out_dir`` is only checked for being writable.
    """
    from tui_lab.core.storage import load_preset
    from tui_lab.run.sweep import prepare_sweep

    preset = load_preset(args.preset)
    if not isinstance(preset, TrainPreset):
        raise BadInput(
            f"a {preset.kind} preset: this needs a training preset",
            source=args.preset,
            field="kind",
        )
    return prepare_sweep(
        preset,
        out_dir=out_dir or Path(tempfile.gettempdir()),
        device=args.device,
        data_dir=args.data_dir,
        source=str(args.preset),
    )


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab find-batch",
        description="Find the largest batch that fits in memory, and the throughput of each size "
        "(for the preset's data set, model and first optimizer).",
    )
    add_preset_arguments(parser)
    parser.add_argument(
        "--batch-size-cap", type=positive_int, help="search no higher than this batch size"
    )
    parser.add_argument("--json", type=Path, help="also save the result to this JSON file")
    args = parser.parse_args(argv)

    from tui_lab.analysis.batch_finder import find_largest_batch, training_trial
    from tui_lab.core.storage import save_model
    from tui_lab.run.recorder import trial_busy

    prepared = prepare_preset(args, out_dir=args.json.parent if args.json else None)
    config, n_train = prepared.runs[0], prepared.data.n_train
    trial = training_trial(config, prepared.data)
    console = Console()

    def trial_with_progress(batch_size: int) -> float:
        with console.status(f"training steps at batch {batch_size:,}…"):
            return trial(batch_size)

    limit = min(n_train, args.batch_size_cap or n_train)
    console.print(
        f"{config.dataset}/{config.model}, {config.optimizer.name}, on {config.device}: "
        f"searching batch sizes 1 to {limit:,}",
        highlight=False,
    )
    result = find_largest_batch(trial_with_progress, limit=limit, busy=trial_busy(config.device))
    console.print(trials_table(result))
    console.print(verdict(result, config.device, n_train), highlight=False)
    if args.json:
        save_model(result, args.json)
        console.print(f"saved → {args.json}", highlight=False)
    return 0
