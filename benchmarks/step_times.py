"""Time per training step: minimal loops against the engine, eager and (on CUDA) graphed.

LeNet-5 + SGD(momentum) on resident tensors. Per batch size, interleaved rounds of:
  minimal eager     the loop one would write by hand (slice a permutation, step)
  engine eager      the engine, instruments off, cuda_graphs off
  engine graphed    the engine, instruments off, cuda_graphs on          (CUDA only)
  minimal graphed   the CUDA-graphs tutorial's loop: copy the batch into static tensors,
                    replay a graph of forward, backward and step          (CUDA only)
  engine+instr      the engine as a sweep runs it: default instruments (noise scale within its
                    time share, trajectory snapshots), graphed on CUDA
Each figure is the median over rounds of the per-step time of one timed epoch (the engine's
second epoch, by wall clock between its epoch events less evaluation, so the instruments'
time counts). Usable alone: python benchmarks/step_times.py [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from tui_lab.core.data import Data
from tui_lab.core.devices import resolve_device, synchronize
from tui_lab.core.models import seeded_model
from tui_lab.run.engine import train_run
from tui_lab.run.events import EpochEnded
from tui_lab.schema import LrScaling, OptimizerConfig, RunConfig
from tui_lab.schema.analysis import NoiseScaleSettings
from tui_lab.schema.trajectory import TrajectorySettings

OPTIMIZER = OptimizerConfig(name="sgd", lr=0.01, momentum=0.9).resolved()
WARMUP = 3


def synthetic_data(n: int, device: str, seed: int = 0) -> Data:
    """MNIST-shaped random images: step timings do not depend on what the pixels show."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Data("synthetic", x, y, x[:512], y[:512], 10).to(device)


def bench_config(device: str, batch: int, epochs: int, graphs: str, **changes) -> RunConfig:
    return RunConfig(
        preset_name="bench", dataset="digits", model="lenet5", optimizer=OPTIMIZER,
        batch_size=batch, batch_size_requested=batch, lr=0.01, lr_scaling=LrScaling(),
        epochs=epochs, target_accuracy=1.0, seed=0, device=device, threads=1,
        noise_scale=NoiseScaleSettings(enabled=False),
        trajectory=TrajectorySettings(enabled=False), cuda_graphs=graphs,
    ).updated(**changes)  # fmt: skip


def _model_and_optimizer(data: Data, device: str):  # type: ignore[no-untyped-def]
    model = seeded_model("lenet5", data, 0, device)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def minimal_eager(data: Data, device: str, batch: int, steps: int) -> float:
    model, optimizer = _model_and_optimizer(data, device)
    x, y, n = data.train_x, data.train_y, data.n_train
    order = torch.randperm(n).to(device)

    def step(i: int) -> None:
        idx = order[(i * batch) % (n - batch + 1) :][:batch]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()

    return _time_steps(step, steps, device)


def minimal_graphed(data: Data, device: str, batch: int, steps: int) -> float:
    """torch's "whole network capture" recipe, with the batch copied into static tensors."""
    model, optimizer = _model_and_optimizer(data, device)
    x, y, n = data.train_x, data.train_y, data.n_train
    order = torch.randperm(n).to(device)
    static_x, static_y = x[:batch].clone(), y[:batch].clone()

    def body() -> None:
        F.cross_entropy(model(static_x), static_y).backward()
        optimizer.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP):
            optimizer.zero_grad(set_to_none=True)
            body()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        body()

    def step(i: int) -> None:
        idx = order[(i * batch) % (n - batch + 1) :][:batch]
        static_x.copy_(x[idx])
        static_y.copy_(y[idx])
        graph.replay()

    return _time_steps(step, steps, device)


def _time_steps(step: Callable[[int], None], steps: int, device: str) -> float:
    for i in range(WARMUP):
        step(i)
    synchronize(torch.device(device))
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    synchronize(torch.device(device))
    return (time.perf_counter() - start) / steps


def engine_step(data: Data, device: str, batch: int, graphs: str, instruments=False) -> float:
    """The engine's second epoch (the first warms up, and captures the graph), by wall clock."""
    config = bench_config(device, batch, 2, graphs)
    if instruments:
        config = config.updated(noise_scale=NoiseScaleSettings(), trajectory=TrajectorySettings())
    ends: list[tuple[float, EpochEnded]] = []
    for event in train_run(config, data):
        if isinstance(event, EpochEnded):
            ends.append((time.perf_counter(), event))
    (first_end, first), (second_end, second) = ends
    steps = second.record.steps - first.record.steps
    return (second_end - first_end - second.record.eval_seconds) / steps


def step_table(device: str, batches: list[int], steps: int, rounds: int) -> None:
    cuda = device.startswith("cuda")
    methods: dict[str, Callable[[Data, int], float]] = {
        "minimal eager": lambda d, b: minimal_eager(d, device, b, steps),
        "engine eager": lambda d, b: engine_step(d, device, b, "off"),
    }
    if cuda:
        methods["engine graphed"] = lambda d, b: engine_step(d, device, b, "on")
        methods["minimal graphed"] = lambda d, b: minimal_graphed(d, device, b, steps)
    graphs = "auto" if cuda else "off"
    methods["engine+instr"] = lambda d, b: engine_step(d, device, b, graphs, instruments=True)
    torch.set_num_threads(1)
    print(f"\nms per step (median of {rounds} interleaved rounds, min in brackets), {device}")
    print(f"{'batch':>6} " + " ".join(f"{name:>19}" for name in methods))
    for batch in batches:
        data = synthetic_data(max(steps * batch, batch * 2), device)
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(rounds):
            for name, method in methods.items():
                times[name].append(method(data, batch) * 1000)
        cells = [f"{statistics.median(t):>10.3f} [{min(t):.3f}]" for t in times.values()]
        print(f"{batch:>6} " + " ".join(f"{c:>19}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    device = "cuda:0" if device == "cuda" else device
    batches = [int(b) for b in args.batch_sizes.split(",")]
    step_table(device, batches, args.steps, args.rounds)


if __name__ == "__main__":
    main()
