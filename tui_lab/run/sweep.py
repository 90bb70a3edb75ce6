"""A sweep: a preset expanded into runs, each trained by the engine and recorded as a session.

Everything that can be wrong with the input (device, data, batch sizes, output folder) is checked
before the first run starts, so a bad preset fails in a second, not after an hour of training.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from tui_lab.core.data import Data, load_data
from tui_lab.core.devices import resolve_device
from tui_lab.core.models import checked_model
from tui_lab.core.storage import ensure_writable_dir
from tui_lab.core.weights import save_weights, weights_path_for
from tui_lab.errors import BadInput, StorageFault
from tui_lab.run.events import Event, RunEnded, RunStarted, SessionSaved, SweepEnded, SweepStarted
from tui_lab.run.executor import Executor, InlineExecutor, RunTask, SweepControl
from tui_lab.run.policy import plan_tasks
from tui_lab.run.process_pool import LocalProcesses, capacity
from tui_lab.run.recorder import SessionRecorder, save_plan
from tui_lab.run.train_steps import graph_plan
from tui_lab.schema import CheckedModel, ExecutorSettings, ModelName, RunConfig, Status, TrainPreset


def plan_runs(
    preset: TrainPreset,
    n_train: int,
    device: str,
    source: str | None = None,
    sweep_id: str | None = None,
    model: ModelName | CheckedModel | None = None,
) -> list[RunConfig]:
    """One resolved RunConfig per (optimizer, batch size, learning rate, seed), in that order.

    The seeds of one configuration are consecutive and share a group id (``sweep_id/n``), so
    they can be trained together and compared as one group. ``model``: the preset's, as
    ``checked_model`` checked it (the user's own model must be checked first).
    """
    sweep_id = sweep_id or secrets.token_hex(4)
    seeds, factors = preset.seed_list(), preset.lr_factors()
    runs = []
    for o_index, optimizer in enumerate(preset.optimizer_grid()):
        base_lrs = optimizer.learning_rates()
        for b_index, requested in enumerate(preset.batch_sizes):
            batch = n_train if requested == "full" else requested
            if batch > n_train:
                raise BadInput(
                    f"batch size {batch} is larger than the training set ({n_train} samples)",
                    source=source,
                    field=f"batch_sizes[{b_index}]",
                )
            for base_lr in base_lrs:
                resolved = optimizer.at_lr(base_lr)
                assert resolved.lr is not None
                scaled = preset.lr_scaling.scale(resolved.lr, batch)
                for factor in factors:
                    lr = scaled * (factor or 1.0)
                    if not 0 < lr < math.inf:
                        raise BadInput(
                            f"scaled {preset.lr_scaling.rule} to batch size {batch}, the "
                            f"learning rate becomes {lr:g}",
                            source=source,
                            field="optimizer.lr"
                            if preset.optimizers is None
                            else f"optimizers[{o_index}].lr",
                        )
                    group = f"{sweep_id}/{len(runs) // len(seeds)}"
                    for seed in seeds:
                        runs.append(
                            RunConfig(
                                preset_name=preset.name,
                                dataset=preset.dataset,
                                data_dir=preset.data_dir,
                                train_subset=preset.train_subset,
                                model=preset.model if model is None else model,
                                optimizer=resolved,
                                batch_size=batch,
                                batch_size_requested=requested,
                                micro_batch_size=preset.micro_batch_size,
                                lr=lr,
                                lr_scaling=preset.lr_scaling,
                                epochs=preset.epochs,
                                target_accuracy=preset.target_accuracy,
                                stop_at_target=preset.stop_at_target,
                                seed=seed,
                                device=device,
                                threads=preset.threads,
                                cuda_graphs=preset.cuda_graphs,
                                group_id=group,
                                group_size=len(seeds),
                                lr_factor=factor,
                                lr_grid_size=len(base_lrs) * len(factors),
                                protocol=preset.protocol,
                                stacking=preset.stacking,
                                curve_points=preset.curve_points,
                                noise_scale=preset.noise_scale,
                                trajectory=preset.trajectory,
                            )
                        )
                        kind, why = graph_plan(runs[-1])
                        if preset.cuda_graphs == "on" and kind != "cuda_graph":
                            raise BadInput(
                                f"cuda_graphs is on but {runs[-1].label()} cannot be captured: "
                                f"{why}",
                                source=source,
                                field="cuda_graphs",
                            )
    return runs


@dataclass
class PreparedSweep:
    preset: TrainPreset
    data: Data
    runs: list[RunConfig]
    out_dir: Path
    executor: Executor = field(default_factory=InlineExecutor)


def prepare_sweep(
    preset: TrainPreset,
    *,
    out_dir: Path,
    device: str | None = None,
    data_dir: Path | None = None,
    executor: ExecutorSettings | None = None,
    parallel: int | str | None = None,
    source: str | None = None,
) -> PreparedSweep:
    """Validate everything, load the data and join the cluster if the sweep trains on one;
    raises BadInput naming the file (or flag) and field.

    ``device``, ``data_dir`` and ``executor`` override the preset's (from command-line flags).
    """
    if data_dir is not None:
        preset = preset.updated(data_dir=data_dir)
    if executor is not None:
        preset = preset.updated(executor=executor)
    if parallel is not None:
        preset = preset.updated(parallel=parallel)
    out_dir = ensure_writable_dir(out_dir)
    data = load_data(
        preset.dataset,
        data_dir=preset.data_dir,
        seed=preset.seed,
        train_subset=preset.train_subset,
        source=source,
    )
    device_spec = device or preset.device
    device_source, device_field = (None, "--device") if device else (source, "device")
    runner: Executor
    if preset.executor.kind == "ray":
        from tui_lab.run.ray_executor import RayExecutor, cluster_device, connect

        ray = connect(
            preset.executor,
            source=None if executor else source,
            field="--ray" if executor else "executor.address",
        )
        resolved_device = cluster_device(ray, device_spec, source=device_source, field=device_field)
        runner = RayExecutor(preset.executor)
    else:
        resolved_device = resolve_device(device_spec, source=device_source, field=device_field)
    model = checked_model(preset.model, data, source)
    runs = plan_runs(preset, data.n_train, resolved_device, source, model=model)
    if preset.executor.kind != "ray":
        runner = local_executor(runs, preset.parallel)
    return PreparedSweep(preset, data, runs, out_dir, runner)


def local_executor(runs: list[RunConfig], parallel: int | str) -> Executor:
    """Worker processes when more than one run fits on the machine at once, else this process."""
    if capacity(runs, parallel).slots > 1:
        return LocalProcesses(parallel)
    return InlineExecutor()


def run_sweep(
    prepared: PreparedSweep,
    control: SweepControl | None = None,
    executor: Executor | None = None,
) -> Iterator[Event]:
    """Train every run through ``executor`` (default: the one the sweep was prepared with: a
    Ray cluster, worker processes when several runs fit at once, or this process); yields the
    engine's events, interleaved when runs overlap, plus SessionSaved after each save.

    Sessions and weights are written here, from the events, whichever executor trained the run.
    If the consumer stops early (Ctrl+C, a signal, closing the generator), every run that had
    started and not ended is saved as interrupted before the generator ends. A run that fails
    in training is saved as failed and the sweep goes on. A session or weights file that cannot
    be written (disk full, folder removed or read-only) would fail every later run the same
    way: that run is marked failed where that can still be written, and the StorageFault ends
    the sweep.
    """
    control = control or SweepControl()
    executor = executor or prepared.executor
    runs = prepared.runs
    slots = executor.slots(runs)
    planned = plan_tasks(runs, slots)
    save_plan(prepared.out_dir, prepared.preset.name, runs, slots, planned)  # for `bslab watch`
    yield SweepStarted(prepared.preset.name, runs, slots, tuple(map(tuple, planned)))
    tasks = [RunTask(tuple((i, runs[i]) for i in task)) for task in planned]
    recorders: dict[int, SessionRecorder] = {}
    paths: list[Path] = []
    events = executor.execute(tasks, prepared.data, control)
    try:
        for event in events:
            if isinstance(event, RunStarted):  # again, if an executor retries the run
                recorders.setdefault(event.run_index, SessionRecorder(prepared.out_dir))
            recorder = recorders.get(getattr(event, "run_index", -1))
            if recorder is None:
                yield event
                continue
            try:
                if isinstance(event, RunEnded):
                    del recorders[event.run_index]
                    yield from _ended(event, recorder, paths)
                    continue
                saved = recorder.handle(event)
            except StorageFault as fault:
                recorders.pop(event.run_index, None)
                reason = f"not saved: {fault.reason}"
                failed = _finish_quietly(recorder, event.run_index, "failed", reason)
                if failed is not None:
                    yield failed
                raise
            yield event
            if saved is not None:
                yield saved
    finally:
        events.close()
        for index, recorder in recorders.items():  # started but never ended: cut short
            _finish_quietly(recorder, index, "interrupted", "interrupted before the run ended")
    yield SweepEnded(control.cancel.is_set(), paths)


def _ended(event: RunEnded, recorder: SessionRecorder, paths: list[Path]) -> Iterator[Event]:
    """Record the run's end: its weights beside the session, then the final save (the file says
    how the run ended only once its weights are there). All of it happens before the event goes
    on, so a consumer that stops at RunEnded (quitting, Ctrl+C) still leaves the run saved."""
    recorder.handle(event)
    final = None
    if recorder.path is not None:
        paths.append(recorder.path)
        weights_file = None
        if event.weights is not None:
            weights = weights_path_for(recorder.path)
            save_weights(event.weights, weights)
            weights_file = weights.name
        final = recorder.finish(event.run_index, weights_file=weights_file)
    yield replace(event, weights=None)  # consumers need no copy of the weights
    if final is not None:
        yield final


def _finish_quietly(
    recorder: SessionRecorder, index: int, status: Status, message: str
) -> SessionSaved | None:
    """End the run with this status if its file can still be written (if not, it is read back
    as stopped once this process is gone)."""
    try:
        return recorder.finish(index, status=status, message=message)
    except StorageFault:
        return None
