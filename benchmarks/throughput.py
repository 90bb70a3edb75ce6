"""Engine throughput against a minimal hand-written loop and a conventional DataLoader loop.

All three train LeNet-5 with SGD on the same tensors (the offline digits, on the chosen device)
for the same number of epochs; the figure per method is the median epoch's samples/second
(evaluation excluded). Usage: python benchmarks/throughput.py [--device cpu] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from tui_lab.core.data import load_data
from tui_lab.core.devices import resolve_device, synchronize
from tui_lab.core.models import build_model
from tui_lab.run.engine import DEFAULT_THREADS, cpu_threads, train_run
from tui_lab.run.events import EpochEnded
from tui_lab.schema import LrScaling, OptimizerConfig, RunConfig
from tui_lab.schema.analysis import NoiseScaleSettings
from tui_lab.schema.trajectory import TrajectorySettings

OPTIMIZER = OptimizerConfig(name="sgd", lr=0.01, momentum=0.9).resolved()


def fresh_model(data, device):
    torch.manual_seed(0)
    model = build_model("lenet5", data.input_shape, data.num_classes).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def run_config(
    device: str, batch: int, epochs: int, instruments: bool = False, trajectory: bool | None = None
) -> RunConfig:
    """The benchmark's run; ``instruments`` turns on the noise scale and (unless ``trajectory``
    says otherwise) the trajectory, each with its default settings."""
    return RunConfig(
        preset_name="bench", dataset="digits", model="lenet5", optimizer=OPTIMIZER,
        batch_size=batch, batch_size_requested=batch, lr=0.01, lr_scaling=LrScaling(),
        epochs=epochs, target_accuracy=1.0, seed=0, device=device,
        noise_scale=NoiseScaleSettings(enabled=instruments),
        trajectory=TrajectorySettings(enabled=instruments if trajectory is None else trajectory),
    )  # fmt: skip


def engine_epochs(data, device, batch, epochs, instruments: bool = False) -> list[float]:
    """The engine as a run uses it; without instruments it does what the minimal loop does."""
    config = run_config(device, batch, epochs, instruments)
    records = [e.record for e in train_run(config, data) if isinstance(e, EpochEnded)]
    return [r.train_seconds for r in records]


def minimal_epochs(data, device, batch, epochs) -> list[float]:
    """The loop one would write by hand over tensors already on the device."""
    model, optimizer = fresh_model(data, device)
    x, y, n = data.train_x, data.train_y, data.n_train
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n).to(device)
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
        synchronize(torch.device(device))
        times.append(time.perf_counter() - start)
    return times


def dataloader_epochs(data, device, batch, epochs) -> list[float]:
    """The textbook loop: a CPU TensorDataset, a shuffling DataLoader, copies to the device."""
    model, optimizer = fresh_model(data, device)
    loader = DataLoader(
        TensorDataset(data.train_x.cpu(), data.train_y.cpu()), batch_size=batch, shuffle=True
    )
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        synchronize(torch.device(device))
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,32,512")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_data("digits").to(device)
    n = data.n_train
    print(f"device {device}, torch {torch.__version__}, torch's default {DEFAULT_THREADS} threads")
    print(f"LeNet-5 + SGD on {n} digits, median of {args.epochs} epochs (samples/s)\n")
    print("engine: bare (instruments off); +instr: noise scale (default cadence) and trajectory")
    print(
        f"{'batch':>6} {'engine':>10} {'minimal':>10} {'dataloader':>11} {'engine/min':>11} "
        f"{'+instr':>10} {'+instr/min':>11}"
    )
    for batch in map(int, args.batch_sizes.split(",")):
        rates = {}
        # The engine picks its CPU thread count per batch size; the loops it is compared with
        # get the same count, so that the figures compare loops, not thread settings.
        threads = cpu_threads(run_config(device, batch, args.epochs))
        for name, method in [
            ("minimal", minimal_epochs),
            ("engine", engine_epochs),
            ("dataloader", dataloader_epochs),
            ("instr", lambda *a: engine_epochs(*a, instruments=True)),
        ]:
            torch.set_num_threads(threads)
            rates[name] = n / statistics.median(method(data, device, batch, args.epochs))
        print(
            f"{batch:>6} {rates['engine']:>10,.0f} {rates['minimal']:>10,.0f} "
            f"{rates['dataloader']:>11,.0f} {rates['engine'] / rates['minimal']:>10.1%} "
            f"{rates['instr']:>10,.0f} {rates['instr'] / rates['minimal']:>10.1%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
