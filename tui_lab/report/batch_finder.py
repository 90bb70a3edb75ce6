"""The batch-size finder's results as a table and a one-line verdict (cli and app)."""

from __future__ import annotations

from rich import box
from rich.table import Table

from tui_lab.report.comparison import CONTENDED_MARK, CONTENDED_NOTE
from tui_lab.schema.analysis import BatchFinderResult


def trials_table(result: BatchFinderResult) -> Table:
    """Every size tried, smallest first, with its throughput or that it ran out of memory."""
    fastest = max((t.samples_per_second or 0.0 for t in result.trials), default=0.0)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Batch sizes tried")
    for name in ("batch", "try", "samples/s", "×best"):
        table.add_column(name, justify="right")
    for index, trial in sorted(enumerate(result.trials, 1), key=lambda it: it[1].batch_size):
        if trial.fits and trial.samples_per_second is not None:
            speed = f"{trial.samples_per_second:,.0f}" + (CONTENDED_MARK if trial.contended else "")
            relative = f"{trial.samples_per_second / fastest:.2f}" if fastest else "—"
        else:
            speed, relative = "[bold red]out of memory[/]", ""
        table.add_row(f"{trial.batch_size:,}", str(index), speed, relative)
    return table


def verdict(result: BatchFinderResult, device: str, n_train: int) -> str:
    """One sentence: the largest batch, and whether memory or the data set was the bound; and
    a line under it when throughputs were measured on a busy machine."""
    busy = CONTENDED_NOTE if any(t.contended for t in result.trials) else ""
    return _bound(result, device, n_train) + busy


def _bound(result: BatchFinderResult, device: str, n_train: int) -> str:
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
