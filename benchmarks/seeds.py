"""K seeds trained together as one stacked model against the same seeds trained separately.

For each batch size: the wall time of K seeds of LeNet-5 (or ``--model mlp``) stacked (the
engine's ``train_task`` with ``StackedSteps``) and of one seed alone, each training the same
number of steps on the offline digits, with the noise scale and trajectory off; evaluation
excluded.
Measurements are interleaved (one, stacked, one, stacked, ...) and repeated, so load from other
programs hits both alike; min and median are reported.

- ``stacked/one``: the issue's goal is <= 3 on a 2-core CPU and <= 1.5 on a GPU for K = 8.
- ``separate/one``: K seeds as separate runs with perfect parallelism over the cores (or one
  after another on a GPU): K / min(K, cores) on a CPU, K on a GPU. Optimistic for "separate",
  so stacking is chosen only where it beats the best that separate runs could do.
- ``winner``: what ``tui_lab.run.policy.stacking_pays`` chooses for one configuration's seeds,
  and whether the measurement agrees.

Usage: python benchmarks/seeds.py [--device cpu|cuda] [--seeds 8] [--batches 1 2 4 8 16 32]
       [--steps 150] [--repeats 3] [--threads N]
GPU (the lead's check, under 2 minutes):
       python benchmarks/seeds.py --device cuda --batches 1 4 16 64 256 1024 --steps 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch

from tui_lab.core.data import Data, load_data
from tui_lab.core.devices import resolve_device
from tui_lab.run.engine import train_run, train_task
from tui_lab.run.events import EpochEnded
from tui_lab.run.policy import stacking_pays
from tui_lab.schema import LrScaling, OptimizerConfig, RunConfig
from tui_lab.schema.analysis import NoiseScaleSettings
from tui_lab.schema.trajectory import TrajectorySettings

OPTIMIZER = OptimizerConfig(name="sgd", lr=0.01, momentum=0.9).resolved()


def run_config(device: str, model: str, batch: int, seed: int, threads: int | None) -> RunConfig:
    return RunConfig(
        preset_name="bench", dataset="digits", model=model, optimizer=OPTIMIZER,
        batch_size=batch, batch_size_requested=batch, lr=0.01, lr_scaling=LrScaling(),
        epochs=1, target_accuracy=1.0, seed=seed, device=device, threads=threads,
        noise_scale=NoiseScaleSettings(enabled=False),
        trajectory=TrajectorySettings(enabled=False),
    )  # fmt: skip


def train_seconds(events) -> float:
    """Training seconds of the (one) epoch, from the engine's own clock."""
    return next(e.record.train_seconds for e in events if isinstance(e, EpochEnded))


def one_seed(data, device, model, batch, threads) -> float:
    return train_seconds(train_run(run_config(device, model, batch, 0, threads), data))


def stacked_seeds(data, device, model, batch, k, threads) -> float:
    configs = [run_config(device, model, batch, seed, threads) for seed in range(k)]
    return train_seconds(train_task(list(enumerate(configs)), data))


def sized(full: Data, samples: int) -> Data:
    """The digits cut or repeated to ``samples`` training samples: every batch size takes the
    same number of steps, however large (repeats are fine for timing)."""
    if samples <= full.n_train:
        return full.subset(samples, seed=0)
    repeats = -(-samples // full.n_train)
    return replace(
        full,
        train_x=full.train_x.repeat(repeats, 1, 1, 1)[:samples],
        train_y=full.train_y.repeat(repeats)[:samples],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--model", choices=["lenet5", "mlp"], default="lenet5")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--steps", type=int, default=150, help="steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: the engine's rule")
    args = parser.parse_args()
    device = resolve_device(args.device)
    full = load_data("digits")
    cores = os.cpu_count() or 1
    kind = torch.device(device).type
    print(
        f"device {device}, {args.model}, {args.seeds} seeds, {args.steps} steps, "
        f"{args.repeats} repeats, {cores} cores, load average {os.getloadavg()[0]:.1f} "
        "(busy if near or above cores)"
    )
    print("batch   one s (min/med)   stacked s (min/med)   stacked/one   separate/one   winner")
    for batch in args.batches:
        data = sized(full, batch * args.steps)
        one_seed(data, device, args.model, batch, args.threads)  # warm-up: allocations, kernels
        ones, stacks, ratios = [], [], []
        for _ in range(args.repeats):
            one = one_seed(data, device, args.model, batch, args.threads)
            stack = stacked_seeds(data, device, args.model, batch, args.seeds, args.threads)
            ones.append(one)
            stacks.append(stack)
            ratios.append(stack / one)
        separate = args.seeds / (min(args.seeds, cores) if kind == "cpu" else 1)
        measured = statistics.median(ratios) < separate
        rule = stacking_pays(kind, args.model, batch, args.seeds, cores if kind == "cpu" else 1)
        agrees = "agrees" if rule == measured else "DISAGREES"
        print(
            f"{batch:5d}   {min(ones):6.3f}/{statistics.median(ones):6.3f}    "
            f"{min(stacks):8.3f}/{statistics.median(stacks):8.3f}    "
            f"{min(ratios):4.2f}/{statistics.median(ratios):4.2f}     {separate:8.2f}       "
            f"{'stacked' if measured else 'separate'} (rule: {'stacked' if rule else 'separate'},"
            f" {agrees})",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
