"""GPU checks of issue 11, in under 3 minutes on one GPU; prints a compact report.

1. Graphed steps train like eager ones: the engine's epoch losses with cuda_graphs on and off
   (LeNet-5; SGD with momentum, and Adam with capturable state), largest relative difference.
2. Time per step at batch 1, 8, 32, 128: minimal eager loop, engine eager, engine graphed,
   minimal hand-graphed loop (step_times.py).
3. Several small-batch runs sharing the GPU: total samples/s of 1, 4 and 8 batch-8 runs trained
   at once by the process pool (needs a data set here: Fashion-MNIST, else the digits).
4. The reference sweep (batch 1 .. full on Fashion-MNIST) for one epoch, concurrent: its wall
   time, from which the 20-epoch sweep is estimated (skipped without Fashion-MNIST).

Run from the repository root: PYTHONPATH=. python benchmarks/gpu_throughput.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # step_times, beside this file

from step_times import bench_config, step_table, synthetic_data
from sweep import timed_sweep

from tui_lab.core.data import load_data
from tui_lab.errors import BadInput
from tui_lab.run.engine import train_run
from tui_lab.run.events import EpochEnded, RunStarted
from tui_lab.schema import TrainPreset

DEVICE = "cuda:0"


def engine_losses(config, data) -> tuple[str, list[float]]:  # type: ignore[no-untyped-def]
    """The kind of step the run used, and its (train, val) loss per epoch, flattened."""
    events = list(train_run(config, data))
    kind = next(e.environment.training_step for e in events if isinstance(e, RunStarted))
    records = [e.record for e in events if isinstance(e, EpochEnded)]
    return kind, [x for r in records for x in (r.train_loss, r.val_loss)]


def graphed_matches_eager() -> None:
    data = synthetic_data(4010, DEVICE)  # 125 full batches of 32, then a partial one of 10
    print("1. graphed vs eager epoch losses (3 epochs, batch 32, noise scale 4 times an epoch)")
    for optimizer in ("momentum", "adam"):
        config = bench_config(DEVICE, 32, 3, "off", optimizer={"name": optimizer, "lr": 0.01})
        config = config.updated(noise_scale={"enabled": True, "per_epoch": 4, "time_share": 1})
        eager_kind, eager = engine_losses(config, data)
        graphed_kind, graphed = engine_losses(config.updated(cuda_graphs="on"), data)
        diff = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(graphed, eager, strict=True))
        verdict = "OK" if diff < 1e-4 else "DIFFERENT"
        print(f"   {optimizer:>9}: {graphed_kind} vs {eager_kind}, "
              f"largest relative difference {diff:.2e} {verdict}")  # fmt: skip


def available_dataset() -> str | None:
    for name in ("fashion-mnist", "digits"):
        try:
            load_data(name)
        except (BadInput, ImportError):
            continue
        return name
    return None


def warm_rate(session) -> float:  # type: ignore[no-untyped-def]
    """A run's training samples/s after its first epoch (process start, CUDA set-up and graph
    capture fall in the first), or over its only epoch."""
    epochs = session.epochs[1:] or session.epochs
    seconds = sum(e.train_seconds for e in epochs)
    return len(epochs) * (session.epochs[0].samples_seen if session.epochs else 0) / seconds


def shared_gpu(dataset: str) -> None:
    print(f"\n3. batch-8 runs sharing {DEVICE} ({dataset}, process pool, instruments on)")
    print(f"   {'runs':>4} {'total samples/s':>16} {'per run':>10} {'x one run':>10} {'wall s':>7}")
    one = None
    epochs, subset = (3, 16_000) if dataset == "fashion-mnist" else (12, None)
    for n in (1, 4, 8):
        preset = TrainPreset(
            name="share", dataset=dataset, train_subset=subset, model="lenet5",
            optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9}, batch_sizes=[8],
            replicates=n, stacking="separate", epochs=epochs, device=DEVICE, parallel=n,
        )  # fmt: skip
        wall, sessions = timed_sweep(preset, n)  # n seeds of one configuration, n at once
        total = sum(warm_rate(s) for s in sessions)  # the runs overlap: their rates add up
        one = one or total
        print(f"   {n:>4} {total:>16,.0f} {total / n:>10,.0f} {total / one:>9.2f}x {wall:>7.1f}")


def reference_sweep(epochs: int = 2, total_epochs: int = 20) -> None:
    """The first ``epochs`` of presets/lenet-mnist-sweep.json (Fashion-MNIST stands in for
    MNIST: the same 60k/10k 28x28 shape), concurrent; the whole sweep's wall time extrapolated
    from the longest run's time per epoch (every run trains all epochs: the preset does not stop
    at the target)."""
    preset = TrainPreset(
        name="reference", dataset="fashion-mnist", model="lenet5",
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9},
        batch_sizes=[1, 8, 32, 128, 512, 2048, 8192, "full"], epochs=epochs, device="cuda",
    )  # fmt: skip
    print(f"\n4. reference sweep, first {epochs} epochs, concurrent (parallel auto)")
    wall, sessions = timed_sweep(preset, "auto")
    per_epoch = {}
    for s in sessions:
        seconds = [e.train_seconds + e.eval_seconds for e in s.epochs]
        per_epoch[s.config.label()] = sum(seconds) / max(len(seconds), 1)
        train = sum(e.train_seconds for e in s.epochs) / max(len(s.epochs), 1)
        with_eval = per_epoch[s.config.label()]
        print(f"   {s.config.label():>14}: {s.environment.training_step:>10} {s.status:>9}  "
              f"{train:.2f} s train per epoch, {with_eval:.2f} s with eval")  # fmt: skip
    longest = max(per_epoch.values(), default=0.0)
    estimate = wall + (total_epochs - epochs) * longest
    print(f"   wall {wall:.1f} s for {epochs} epochs (start-up included); longest run "
          f"{longest:.1f} s an epoch: {total_epochs} epochs estimated at about {estimate:.0f} s "
          f"({estimate / 60:.1f} min)")  # fmt: skip


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("needs CUDA")
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"{torch.cuda.device_count()} GPU(s)\n")  # fmt: skip
    start = time.perf_counter()
    graphed_matches_eager()
    print("\n2. time per step")
    step_table(DEVICE, [1, 8, 32, 128], steps=300, rounds=3)
    dataset = available_dataset()
    if dataset is None:
        print("\n3./4. skipped: no data set here (install dataset-fashion-mnist or scikit-learn)")
    else:
        shared_gpu(dataset)
        if dataset == "fashion-mnist":
            reference_sweep()
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
