"""Ray's cost and benefit here: its start-up, and a sweep's wall time on a local Ray against the
same sweep in this process.

Start-up: ``ray.init`` of a local Ray, the first (empty) task, the first task that imports
bslab (and so torch) on a worker, and ``ray.shutdown``. Sweep: the preset's runs (threads fixed at
1 per run, so both sides do the same work) trained in this process, then through a local Ray
with ``--cpus`` CPUs already started, interleaved ``--repeats`` times; prints min and median.
With ``--gpu`` (needs CUDA) the runs train on the GPU, each Ray task asking for a quarter of it.

Usage: python benchmarks/ray_sweep.py [PRESET] [--epochs 2] [--train-subset N] [--repeats 2]
       [--cpus 2] [--gpu] [--no-startup]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray

from tui_lab.core.storage import load_preset
from tui_lab.run.events import SessionSaved
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import RayExecutorSettings


@ray.remote
def empty() -> int:
    return os.getpid()


@ray.remote
def import_bslab() -> str:
    from tui_lab.run import engine

    return engine.__name__


def startup(cpus: int) -> dict[str, float]:
    """Seconds for each step of a local Ray's life, up to its first bslab task."""
    times = {}
    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    times["init"] = time.perf_counter() - start
    start = time.perf_counter()
    ray.get(empty.remote())
    times["first task"] = time.perf_counter() - start
    start = time.perf_counter()
    ray.get([import_bslab.remote() for _ in range(cpus)])
    times["bslab on every worker"] = time.perf_counter() - start
    start = time.perf_counter()
    ray.shutdown()
    times["shutdown"] = time.perf_counter() - start
    return times


def sweep_seconds(preset, on_ray: bool) -> tuple[float, list[str]]:
    """Wall time of the whole sweep (preparing included) and its runs' statuses."""
    executor = RayExecutorSettings(kind="ray") if on_ray else None
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        prepared = prepare_sweep(preset, out_dir=Path(out), executor=executor)
        events = list(run_sweep(prepared))
        seconds = time.perf_counter() - start
    return seconds, [e.session.status for e in events if isinstance(e, SessionSaved) and e.final]


def figures(values: list[float]) -> str:
    return f"min {min(values):6.1f} s  median {statistics.median(values):6.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="presets/quickstart.json")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--train-subset", type=int)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--no-startup", action="store_true", help="measure only the sweep")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

    if not args.no_startup:
        starts = [startup(args.cpus) for _ in range(args.repeats)]
        for step in starts[0]:
            print(f"ray start-up, {step:22}: {figures([s[step] for s in starts])}", flush=True)

    device = "cuda" if args.gpu else "cpu"
    preset = load_preset(Path(args.preset)).updated(
        epochs=args.epochs, device=device, threads=1, train_subset=args.train_subset
    )
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    sweep_seconds(preset, on_ray=True)  # workers warm: bslab and torch imported
    here, on_ray = [], []
    for _ in range(args.repeats):
        seconds, statuses = sweep_seconds(preset, on_ray=False)
        here.append(seconds)
        ray_seconds, ray_statuses = sweep_seconds(preset, on_ray=True)
        on_ray.append(ray_seconds)
        assert statuses == ray_statuses, (statuses, ray_statuses)
    ray.shutdown()
    runs = len(statuses)
    print(f"sweep {preset.name}: {runs} runs, {args.epochs} epochs, {device}")
    print(f"  in this process: {figures(here)}")
    print(f"  on a local Ray ({args.cpus} CPUs, Ray already up): {figures(on_ray)}")
    ratios = [h / r for h, r in zip(here, on_ray, strict=True)]
    print(f"  speed-up on Ray: min {min(ratios):.2f}×  median {statistics.median(ratios):.2f}×")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
