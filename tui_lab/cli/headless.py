"""``bslab --headless``: a sweep with progress bars then the comparison table, or the paraboloid
lab's sketch."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tui_lab.analysis.paraboloid import run_paraboloid
from tui_lab.cli.compare import print_analysis, print_statement
from tui_lab.cli.sketch import show_paraboloid
from tui_lab.core.storage import ensure_writable_dir, save_paraboloid_session
from tui_lab.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, StorageFault
from tui_lab.report.seeds import sweep_view
from tui_lab.report.vocabulary import run_text
from tui_lab.run.events import (
    EpochEnded,
    RunEnded,
    RunStarted,
    SessionSaved,
    StepStats,
    SweepStarted,
)
from tui_lab.run.process_pool import WORKER_BYTES, machine_slots
from tui_lab.run.signals import Terminated
from tui_lab.run.sweep import PreparedSweep, run_sweep
from tui_lab.schema import CheckedModel, ParaboloidPreset


class RunBars:
    """One progress bar per run, or one for all the runs of a stacked model (they move in
    step); a bar goes when the last of its runs is saved."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.bars: dict[int, TaskID] = {}
        self.open: dict[TaskID, int] = {}  # runs still using each bar
        self.stack: tuple[TaskID, int] | None = None  # the current stack's bar, runs to come

    def start(self, event: RunStarted) -> None:
        if event.run_index in self.bars:  # a retried run keeps its bar
            return
        if self.stack is not None and self.stack[1] > 0:
            bar, left = self.stack
            self.stack = (bar, left - 1)
        else:
            config = event.config
            label = f"  {run_text(config)}"
            if event.stacked > 1:
                label = f"  {config.group_label()}: {event.stacked} runs stacked"
            total = config.epochs * event.steps_per_epoch
            bar = self.progress.add_task(label, total=total, info="")
            self.stack = (bar, event.stacked - 1) if event.stacked > 1 else None
        self.bars[event.run_index] = bar
        self.open[bar] = self.open.get(bar, 0) + 1

    def of(self, run_index: int) -> TaskID | None:
        return self.bars.get(run_index)

    def finish(self, run_index: int) -> None:
        bar = self.bars.pop(run_index, None)
        if bar is None:
            return
        self.open[bar] -= 1
        if not self.open[bar]:
            del self.open[bar]
            self.progress.remove_task(bar)


def warn_if_more_than_the_machine_holds(prepared: PreparedSweep) -> None:
    """``--parallel 8`` on 2 cores: say that fewer train at once (the executor caps them)."""
    asked, preset = prepared.preset.parallel, prepared.preset
    if asked == "auto" or preset.executor.kind != "local":
        return
    slots = machine_slots(prepared.runs)
    if int(asked) > slots:
        print(
            f"bslab: warning: parallel {asked}: this machine holds {slots} "
            f"run{'s' if slots > 1 else ''} at once (a core and {WORKER_BYTES // 2**20} MiB "
            f"each); more would only slow every run down: training {slots} at once",
            file=sys.stderr,
        )


def run_headless(prepared: PreparedSweep, console: Console | None = None) -> int:
    """Run the sweep; returns the exit code: 0, or 1 if a run failed or a file could not be
    saved (which ends the sweep), 130 on Ctrl+C, 143 on SIGTERM, 129 on SIGHUP (the signals
    raise Terminated only inside ``termination_raises``, as ``bslab`` sets up)."""
    console = console or Console()
    warn_if_more_than_the_machine_holds(prepared)
    model = prepared.runs[0].model if prepared.runs else None
    if isinstance(model, CheckedModel):
        console.print(
            f"model {model}: {model.parameters:,} trainable parameters (built and run one "
            f"batch forward and backward on {prepared.data.name})",
            highlight=False,
        )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    sessions = {}
    stopped_by: str | None = None  # the signal that ended the sweep early, if one did
    fault: StorageFault | None = None  # or the file that could not be saved
    exit_code = EXIT_OK
    with progress, contextlib.closing(run_sweep(prepared)) as events:
        sweep_task: TaskID | None = None
        bars = RunBars(progress)
        try:
            for event in events:
                if isinstance(event, SweepStarted):
                    sweep_task = progress.add_task(
                        f"sweep {event.preset_name}", total=len(event.runs), info=""
                    )
                elif isinstance(event, RunStarted):
                    bars.start(event)
                elif isinstance(event, StepStats) and (bar := bars.of(event.run_index)):
                    info = f"loss {event.loss:.4f}  {event.samples_per_second:,.0f} samples/s"
                    progress.update(bar, completed=event.step, info=info)
                elif isinstance(event, EpochEnded) and (bar := bars.of(event.run_index)):
                    r = event.record
                    info = f"epoch {r.epoch}  val acc {r.val_accuracy:.2%}"
                    progress.update(bar, completed=r.steps, info=info)
                elif isinstance(event, RunEnded) and sweep_task is not None:
                    progress.advance(sweep_task)
                elif isinstance(event, SessionSaved) and event.final:
                    sessions[event.run_index] = event.session
                    summary = event.session.summary
                    acc = (
                        f"{summary.final_accuracy:.2%}"
                        if summary and summary.final_accuracy
                        else "—"
                    )
                    print_statement(
                        progress.console,
                        f"  {escape(event.session.config.label())}: {event.session.status}, "
                        f"final accuracy {acc} → {escape(str(event.path))}",
                    )
                    bars.finish(event.run_index)
        except KeyboardInterrupt:
            stopped_by, exit_code = "Ctrl+C", EXIT_INTERRUPTED
        except Terminated as stop:
            stopped_by, exit_code = stop.name, stop.exit_code
        except StorageFault as error:
            fault, exit_code = error, EXIT_FAILED
    # closing() has now ended the generator, which saved the current run as interrupted.
    if stopped_by is not None:
        console.print(
            f"[yellow]Stopped by {stopped_by}: every run in progress was saved as interrupted.[/]"
        )
    finished = [sessions[i] for i in sorted(sessions)]
    if finished:
        console.print(sweep_view(finished, title=prepared.preset.name))
        print_analysis(console, finished, charts=False)
    if fault is not None:  # last, so that it is what the screen ends with
        console.print(
            f"[bold red]bslab: error: {fault.describe()}[/]\n"
            "The sweep stopped: every later run would fail to save the same way. The run was "
            "marked failed if its session could still be written; runs saved before are kept.",
            highlight=False,
        )
    if exit_code != EXIT_OK:
        return exit_code
    return EXIT_FAILED if any(s.status == "failed" for s in finished) else EXIT_OK


def run_paraboloid_headless(
    preset: ParaboloidPreset,
    out_dir: Path,
    console: Console | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> int:
    """Run every path of the preset, save the session into ``out_dir``, print the sketch."""
    console = console or Console()
    ensure_writable_dir(out_dir)  # fail before computing, not after
    session = run_paraboloid(preset)
    path = save_paraboloid_session(session, out_dir)
    show_paraboloid(session, console, width or console.width, height)
    console.print(f"{len(session.paths)} paths in {session.compute_seconds:.1f} s → {path}")
    return EXIT_OK
