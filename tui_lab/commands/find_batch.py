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

from rich import box
from rich.console import Console
from rich.table import Table

from tui_lab.errors import BadInput
from tui_lab.schema import TrainPreset
from tui_lab.schema.analysis import BatchFinderResult


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
    from tui_lab.storage import load_preset
    from tui_lab.sweep import prepare_sweep

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


def trials_table(result: BatchFinderResult) -> Table:
    """Every size tried, smallest first, with its throughput or that it ran out of memory."""
    fastest = max((t.samples_per_second or 0.0 for t in result.trials), default=0.0)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Batch sizes tried")
    for name in ("batch", "try", "samples/s", "×best"):
        table.add_column(name, justify="right")
    for index, trial in sorted(enumerate(result.trials, 1), key=lambda it: it[1].batch_size):
        if trial.fits and trial.samples_per_second is not None:
            speed = f"{trial.samples_per_second:,.0f}"
            relative = f"{trial.samples_per_second / fastest:.2f}" if fastest else "—"
        else:
            speed, relative = "[bold red]out of memory[/]", ""
        table.add_row(f"{trial.batch_size:,}", str(index), speed, relative)
    return table


def verdict(result: BatchFinderResult, device: str, n_train: int) -> str:
    """One sentence: the largest batch, and whether memory or the data set was the bound."""
    largest = result.largest_batch_size
    if largest is None:
        return f"Not even batch 1 fits on {device}."
    if result.reached_limit:
        bound = (
            f"the whole training set ({n_train:,} samples): memory is not the limit"
            if result.limit == n_train
            else f"the cap asked for ({result.limit:,}); larger sizes were not tried"
        )
        return f"Largest batch that fits on {device}: {largest:,}, {bound}."
    return (
        f"Largest batch that fits on {device}: {largest:,} ({largest + 1:,} ran out of memory); "
        "micro_batch_size in the preset trains larger batches by accumulating gradients."
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
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
    from tui_lab.storage import save_model

    prepared = prepare_preset(args, out_dir=args.json.parent if args.json else None)
    trial, config, n_train = training_trial(prepared)
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
    result = find_largest_batch(trial_with_progress, limit=limit)
    console.print(trials_table(result))
    console.print(verdict(result, config.device, n_train), highlight=False)
    if args.json:
        save_model(result, args.json)
        console.print(f"saved → {args.json}", highlight=False)
    return 0
