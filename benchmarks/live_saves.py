"""What saving a running run every few seconds (for ``bslab watch``) costs training.

Two measurements:

1. One live save of a run in progress (``SessionRecorder.save``: copy, curve so far, JSON, fsync,
   rename) with a short and a full curve, against appending one line to a log (the alternative:
   an append-only log per run), min and median of REPEATS saves.
2. Training at batch 1 in this process (LeNet-5, SGD, the offline digits), the same run trained
   in turns with saves every HEARTBEAT_SECONDS (as before: only a heartbeat), every
   LIVE_SAVE_SECONDS (now), and at every progress report (0.25 s: the cost magnified 8×),
   rotating the order each round; samples per wall second and per CPU second of this process
   (less sensitive to other programs on the machine), each as a share of the heartbeat-only
   run of the same round, min and median over the rounds; and the share of each run's wall time
   spent saving, timed inside the same run (what a busy machine cannot blur), median and max.

Usage: python benchmarks/live_saves.py [--rounds 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tui_lab.core.storage import HEARTBEAT_SECONDS
from tui_lab.run import recorder
from tui_lab.run.events import RunEnded, RunStarted, StepStats
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import Environment, LrScaling, OptimizerConfig, RunConfig, TrainPreset

REPEATS = 50


def running_recorder(folder: Path, points: int) -> recorder.SessionRecorder:
    """A recorder of a run in progress whose curve holds ``points`` points, one pending."""
    config = RunConfig(
        preset_name="bench", dataset="digits", model="lenet5",
        optimizer=OptimizerConfig(name="sgd").resolved(), batch_size=1, batch_size_requested=1,
        lr=0.01, lr_scaling=LrScaling(), epochs=20, target_accuracy=0.9, seed=0, device="cpu",
        curve_points=max(10, points),
    )  # fmt: skip
    environment = Environment(
        python="3", torch="2", platform="linux", host="h", device="cpu", device_name="CPU",
        threads=1, bslab="0",
    )  # fmt: skip
    rec = recorder.SessionRecorder(folder)
    rec.handle(RunStarted(0, config, environment, 1437, 360, 1437))
    for i in range(points + 1):
        rec.handle(StepStats(0, 1, i, i / (points + 1), i, i * 0.25, 2.3 / (i + 1), 0.01, 600.0))
    return rec


def save_costs(folder: Path) -> None:
    print(f"one live save, ms (min / median of {REPEATS}):")
    for points in (400, 5000):
        rec = running_recorder(folder, points)
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            rec.save(0, final=False)
            times.append((time.perf_counter() - start) * 1e3)
        assert rec.path is not None
        size = rec.path.stat().st_size / 1024
        print(
            f"  session, {points:5} curve points ({size:4.0f} KiB): "
            f"{min(times):6.2f} / {statistics.median(times):6.2f}"
        )
    times = []
    with open(folder / "log.jsonl", "a") as log:
        for i in range(REPEATS):
            start = time.perf_counter()
            log.write(f'{{"step": {i}, "samples": {i}, "seconds": 0.25, "loss": 0.5}}\n')
            log.flush()
            times.append((time.perf_counter() - start) * 1e3)
    low, median = min(times), statistics.median(times)
    print(f"  append one line to a log:               {low:6.3f} / {median:6.3f}")


def throughput(folder: Path, epochs: int, interval: float) -> tuple[float, float, float]:
    """Samples per wall second and per CPU second of this process, from the run's start to its
    end, saving included (the engine's own samples/s leaves its consumer's time out), and the
    share of that wall time spent saving (timed in the same run: robust to a busy machine)."""
    saving = 0.0
    save = recorder.SessionRecorder.save

    def timed_save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal saving
        start = time.perf_counter()
        try:
            return save(self, *args, **kwargs)
        finally:
            saving += time.perf_counter() - start

    recorder.SessionRecorder.save = timed_save  # type: ignore[method-assign]
    recorder.LIVE_SAVE_SECONDS = interval
    recorder.MAX_SAVE_SHARE = 1.0  # save at the interval asked, however long a save takes
    preset = TrainPreset(
        name="bench", dataset="digits", model="lenet5", batch_sizes=[1], epochs=epochs,
        target_accuracy=1.0, device="cpu", threads=1, parallel=1,
        optimizer=OptimizerConfig(name="sgd", lr=0.01, momentum=0.9),
    )  # fmt: skip
    out = Path(tempfile.mkdtemp(dir=folder))
    wall = cpu = saved = 0.0
    samples = 0
    for event in run_sweep(prepare_sweep(preset, out_dir=out)):
        if isinstance(event, RunStarted):
            wall, cpu, saved = time.perf_counter(), time.process_time(), saving
            samples = event.n_train * epochs
        elif isinstance(event, RunEnded):  # yielded after the run's last save
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            saved = saving - saved
    recorder.SessionRecorder.save = save  # type: ignore[method-assign]
    return samples / wall, samples / cpu, saved / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("BSLAB_OFFLINE", "1")
    intervals = {
        f"every {HEARTBEAT_SECONDS:g} s": HEARTBEAT_SECONDS,
        f"every {recorder.LIVE_SAVE_SECONDS:g} s": recorder.LIVE_SAVE_SECONDS,
        "every report": 0.0,
    }
    with tempfile.TemporaryDirectory() as tmp:
        save_costs(Path(tmp))
        speeds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in intervals}
        names = list(intervals)
        for r in range(args.rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                speeds[name].append(throughput(Path(tmp), args.epochs, intervals[name]))
    base = speeds[names[0]]
    print(f"batch 1, {args.epochs} epochs × {args.rounds} rounds, evaluation included; median "
          f"samples per wall / CPU second, and each as a share of {names[0]}'s in the same "
          "round (min / median):")  # fmt: skip
    for name in names:
        line = f"  {name:14}"
        for k, unit in ((0, "wall"), (1, "CPU")):
            shares = [s[k] / b[k] for s, b in zip(speeds[name], base, strict=True)]
            median = statistics.median(s[k] for s in speeds[name])
            line += f"  {unit} {median:5.0f}: {min(shares):.3f} / {statistics.median(shares):.3f}"
        saving = [s[2] for s in speeds[name]]
        print(f"{line}  saving {statistics.median(saving):.2%} (max {max(saving):.2%})")


if __name__ == "__main__":
    main()
