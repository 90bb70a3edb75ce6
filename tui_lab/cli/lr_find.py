"""``bslab lr-find PRESET``: the learning-rate range test for each batch size of a preset.

For every optimizer of the preset and every batch size (or the one given), a fresh model from
the preset's seed trains for a few steps while the rate grows exponentially; the suggested rate
is where the smoothed loss falls fastest. Beside it stands the rate the preset's scaling rule
would use at that batch size, so a user sees whether the rule and the test agree.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tui_lab.cli import command_parser
from tui_lab.cli.find_batch import add_preset_arguments, positive_int, prepare_preset
from tui_lab.errors import BadInput
from tui_lab.report.plotting import PALETTE, linear_ticks, log_ticks, mark_points, series_mark
from tui_lab.report.scaling import ChartText, LegendEntry, render_chart
from tui_lab.schema import ModelName, OptimizerConfig
from tui_lab.schema.analysis import LrRangeResult

if TYPE_CHECKING:
    from tui_lab.core.data import Data

CHART_HEIGHT = 18
MAX_CHART_WIDTH = 100
CLIP_FACTOR = 1.25  # losses above this times the first are drawn at that ceiling: divergence
# would otherwise squash everything else flat


@dataclass(frozen=True)
class RangeTest:
    """One range test: its batch size, the rate the preset would use there, and the result."""

    batch_size: int
    preset_lr: float
    result: LrRangeResult


def random_batches(x, y, batch_size: int, seed: int) -> Iterator[tuple[Any, Any]]:
    """Endless batches from seeded permutations, epoch after epoch, as training draws them."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(y), generator=generator).to(y.device)
        for start in range(0, len(y) - batch_size + 1, batch_size):
            picks = order[start : start + batch_size]
            yield x[picks], y[picks]


def draw_lr_range(plt: Any, tests: Sequence[RangeTest], size: tuple[int, int]) -> ChartText:
    """Smoothed loss against the rate (log10 on a linear axis), one line per batch size with
    its own mark along it, each suggestion marked ●; a diverging tail is clipped at 1.25 times
    the starting loss."""
    legend, xs_all, ys_all, marks = [], [], [], []
    for index, test in enumerate(tests):
        color = PALETTE[index % len(PALETTE)]
        losses = test.result.smoothed_losses
        ceiling = CLIP_FACTOR * losses[0] if losses else math.inf
        kept = [
            (math.log10(lr), min(loss, ceiling))
            for lr, loss in zip(test.result.lrs, losses, strict=True)
            if math.isfinite(loss)
        ]
        if not kept:
            continue
        xs, ys = [x for x, _ in kept], [y for _, y in kept]
        plt.plot(xs, ys, marker="braille", color=color)
        marks.append((mark_points(xs, ys, index), series_mark(index), color))
        suggested = test.result.suggested_lr
        if suggested is not None:
            at = min(range(len(xs)), key=lambda i: abs(xs[i] - math.log10(suggested)))
            plt.scatter([xs[at]], [ys[at]], marker="●", color=color)
        legend.append(LegendEntry(series_mark(index), f"b={test.batch_size}", color))  # short
        xs_all += xs
        ys_all += ys
    for (mark_xs, mark_ys), mark, color in marks:  # over every line, none hidden by another
        plt.scatter(mark_xs, mark_ys, marker=mark, color=color)
    if xs_all:
        columns, lines = size
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        plt.xticks(*log_ticks(min(xs_all), max(xs_all), max(2, columns // 8)))
        plt.yticks(*linear_ticks(min(ys_all), max(ys_all), max(2, lines // 3)))
        plt.xlabel("learning rate (log)")
    legend.append(LegendEntry("●", "suggested", (128, 128, 128)))
    return ChartText("smoothed training loss vs learning rate (range test)", legend)


def suggestions_table(tests: Sequence[RangeTest], rule: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Suggested learning rates")
    for name in ("batch", "suggested", f"preset ({rule})", "ratio", "stopped"):
        table.add_column(name, justify="right")
    for test in tests:
        suggested = test.result.suggested_lr
        table.add_row(
            str(test.batch_size),
            f"{suggested:.3g}" if suggested else "none",
            f"{test.preset_lr:.3g}",
            f"{suggested / test.preset_lr:.2f}" if suggested else "—",
            test.result.stop_reason.replace("_", " "),
        )
    return table


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab lr-find",
        description="Learning-rate range test (Smith 2017) for each batch size of a preset: "
        "the rate grows exponentially until the loss diverges; the suggestion is where the "
        "smoothed loss falls fastest. The model is rebuilt for every test.",
    )
    add_preset_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, help="test only this batch size")
    parser.add_argument("--steps", type=positive_int, default=200, help="steps per test (200)")
    parser.add_argument("--start-lr", type=float, default=1e-5, help="first rate (1e-5)")
    parser.add_argument("--end-lr", type=float, default=10.0, help="last rate (10)")
    args = parser.parse_args(argv)
    if not 0 < args.start_lr < args.end_lr:
        raise BadInput("need 0 < --start-lr < --end-lr", field="--start-lr")
    if args.steps < 2:
        raise BadInput("the range test needs at least 2 steps", field="--steps")

    prepared = prepare_preset(args)
    n_train = prepared.data.n_train
    if args.batch_size is not None and args.batch_size > n_train:
        raise BadInput(f"larger than the training set ({n_train} samples)", field="--batch-size")
    preset = prepared.preset
    data = prepared.data.to(prepared.runs[0].device)  # as in training: all of it on the device
    optimizers: dict[str, OptimizerConfig] = {}
    for run in prepared.runs:
        optimizers.setdefault(run.optimizer.model_dump_json(), run.optimizer)
    batch_sizes = (
        [args.batch_size] if args.batch_size else sorted({r.batch_size for r in prepared.runs})
    )
    console = Console()
    for optimizer in optimizers.values():
        tests = []
        for batch_size in batch_sizes:
            with console.status(f"{optimizer.name}, batch {batch_size}: range test…"):
                result = range_test(data, preset.model, optimizer, batch_size, preset.seed, args)
            assert optimizer.lr is not None  # runs carry resolved optimizers
            preset_lr = preset.lr_scaling.scale(optimizer.lr, batch_size)
            tests.append(RangeTest(batch_size, preset_lr, result))
        console.print()
        console.print(
            f"[bold]{optimizer.label()}[/] on {data.name}/{preset.model}", highlight=False
        )
        width = min(MAX_CHART_WIDTH, console.width)
        chart = render_chart(partial(draw_lr_range, tests=tests), width, CHART_HEIGHT)
        console.print(Text.from_ansi(chart), soft_wrap=True)
        console.print(suggestions_table(tests, preset.lr_scaling.rule))
    return 0


def range_test(
    data: Data,
    model_name: ModelName,
    optimizer: OptimizerConfig,
    batch_size: int,
    seed: int,
    args: argparse.Namespace,
) -> LrRangeResult:
    """One range test on a fresh model built from the preset's seed."""
    import torch.nn.functional as F

    from tui_lab.analysis.lr_finder import lr_range_test
    from tui_lab.core.models import seeded_model
    from tui_lab.core.optimizers import build_optimizer

    model = seeded_model(model_name, data, seed, data.train_x.device)
    return lr_range_test(
        model,
        lambda lr: build_optimizer(model.parameters(), optimizer, lr),
        random_batches(data.train_x, data.train_y, batch_size, seed),
        F.cross_entropy,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        steps=args.steps,
    )
