"""A sweep: a preset expanded into runs, each trained by the engine and recorded as a session.

Everything that can be wrong with the input (device, data, batch sizes, output folder) is checked
before the first run starts, so a bad preset fails in a second, not after an hour of training.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tui_lab.data import Data, load_data
from tui_lab.devices import resolve_device
from tui_lab.engine import RunOutcome, train_run
from tui_lab.errors import BadInput
from tui_lab.events import Event, SweepEnded, SweepStarted
from tui_lab.recorder import SessionRecorder
from tui_lab.schema import RunConfig, TrainPreset
from tui_lab.storage import ensure_writable_dir
from tui_lab.weights import save_weights, weights_path_for


@dataclass
class SweepControl:
    """Thread-safe requests from a UI: stop the current run (and go on), or cancel the sweep."""

    stop_run: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)

    def is_set(self) -> bool:
        """The engine's stop signal: either request ends the current run."""
        return self.stop_run.is_set() or self.cancel.is_set()


def plan_runs(
    preset: TrainPreset, n_train: int, device: str, source: str | None = None
) -> list[RunConfig]:
    """One resolved RunConfig per (optimizer, batch size), in preset order."""
    runs = []
    for optimizer in preset.optimizer_grid():
        resolved = optimizer.resolved()
        for b_index, requested in enumerate(preset.batch_sizes):
            batch = n_train if requested == "full" else requested
            if batch > n_train:
                raise BadInput(
                    f"batch size {batch} is larger than the training set ({n_train} samples)",
                    source=source,
                    field=f"batch_sizes[{b_index}]",
                )
            assert resolved.lr is not None
            runs.append(
                RunConfig(
                    preset_name=preset.name,
                    dataset=preset.dataset,
                    data_dir=preset.data_dir,
                    train_subset=preset.train_subset,
                    model=preset.model,
                    optimizer=resolved,
                    batch_size=batch,
                    batch_size_requested=requested,
                    micro_batch_size=preset.micro_batch_size,
                    lr=preset.lr_scaling.scale(resolved.lr, batch),
                    lr_scaling=preset.lr_scaling,
                    epochs=preset.epochs,
                    target_accuracy=preset.target_accuracy,
                    seed=preset.seed,
                    device=device,
                    threads=preset.threads,
                    curve_points=preset.curve_points,
                    noise_scale=preset.noise_scale,
                    trajectory=preset.trajectory,
                )
            )
    return runs


@dataclass
class PreparedSweep:
    preset: TrainPreset
    data: Data
    runs: list[RunConfig]
    out_dir: Path


def prepare_sweep(
    preset: TrainPreset,
    *,
    out_dir: Path,
    device: str | None = None,
    data_dir: Path | None = None,
    source: str | None = None,
) -> PreparedSweep:
    """Validate everything and load the data; raises BadInput naming the file and field."""
    if data_dir is not None:
        preset = preset.updated(data_dir=data_dir)
    resolved_device = resolve_device(
        device or preset.device,
        source=None if device else source,
        field="--device" if device else "device",
    )
    out_dir = ensure_writable_dir(out_dir)
    data = load_data(
        preset.dataset,
        data_dir=preset.data_dir,
        seed=preset.seed,
        train_subset=preset.train_subset,
        source=source,
    )
    runs = plan_runs(preset, data.n_train, resolved_device, source)
    return PreparedSweep(preset, data, runs, out_dir)


def run_sweep(prepared: PreparedSweep, control: SweepControl | None = None) -> Iterator[Event]:
    """Train every run in turn; yields the engine's events plus SessionSaved after each save.

    If the consumer stops early (Ctrl+C, closing the generator), the run in progress is saved
    as interrupted before the generator ends.
    """
    control = control or SweepControl()
    yield SweepStarted(prepared.preset.name, prepared.runs)
    paths: list[Path] = []
    for index, config in enumerate(prepared.runs):
        if control.cancel.is_set():
            break
        control.stop_run.clear()
        recorder = SessionRecorder(prepared.out_dir)
        engine = train_run(config, prepared.data, run_index=index, stop=control)
        finished = False
        try:
            outcome: RunOutcome = yield from _recorded(engine, recorder)
            finished = True
        finally:
            if not finished:
                engine.close()
                recorder.finish(
                    index, status="interrupted", message="interrupted before the run ended"
                )
        if recorder.path is None:
            continue
        paths.append(recorder.path)
        weights_file = None
        if outcome.model is not None:
            weights = weights_path_for(recorder.path)
            save_weights(outcome.model, weights)
            weights_file = weights.name
        saved = recorder.finish(index, weights_file=weights_file)
        if saved is not None:
            yield saved
    yield SweepEnded(control.cancel.is_set(), paths)


def _recorded(engine: Iterator[Event], recorder: SessionRecorder) -> Iterator[Event]:
    """Pass the engine's events through, recording each and announcing every save."""
    while True:
        try:
            event = next(engine)
        except StopIteration as done:
            return done.value
        saved = recorder.handle(event)
        yield event
        if saved is not None:
            yield saved
