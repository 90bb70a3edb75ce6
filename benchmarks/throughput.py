"""Engine throughput against a minimal hand-written loop and a conventional DataLoader loop.

All train LeNet-5 with SGD (momentum 0.9) on the same tensors, on the chosen device, for the
same number of epochs, one epoch of each method in turn (interleaved, in a rotating order), so
that a machine whose speed drifts slows every method alike. Per epoch each method's time is the
wall time of its training, measuring instruments included, evaluation excluded. Printed: the
median epoch's samples/s per method, and the engine's speed as a share of the minimal loop's,
median and lowest over the epochs (each epoch's share is taken against the minimal loop's epoch
of the same round). "+instr" is the engine with its default instruments on (the noise scale at
its default cadence and the trajectory), the configuration every run uses unless told otherwise.

Usage: python benchmarks/throughput.py [--device cpu] [--epochs 9] [--batch-sizes 1,8,32,128,512]
                                       [--dataset digits | fashion-mnist --train-subset 8000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from tui_lab.core.data import Data, load_data
from tui_lab.core.devices import resolve_device, synchronize
from tui_lab.core.models import build_model
from tui_lab.run.engine import train_run
from tui_lab.run.events import EpochEnded
from tui_lab.run.policy import DEFAULT_THREADS, cpu_threads
from tui_lab.schema import LrScaling, OptimizerConfig, RunConfig
from tui_lab.schema.analysis import NoiseScaleSettings
from tui_lab.schema.trajectory import TrajectorySettings

OPTIMIZER = OptimizerConfig(name="sgd", lr=0.01, momentum=0.9).resolved()
# Each method yields its epochs' training seconds, one epoch per next().
Epochs = Iterator[float]


def fresh_model(data, device):
    torch.manual_seed(0)
    model = build_model("lenet5", data.input_shape, data.num_classes).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def run_config(
    device: str,
    batch: int,
    epochs: int,
    instruments: bool = False,
    trajectory: bool | None = None,
    dataset: str = "digits",
) -> RunConfig:
    """The benchmark's run; ``instruments`` turns on the noise scale and (unless ``trajectory``
    says otherwise) the trajectory, each with its default settings."""
    return RunConfig(
        preset_name="bench", dataset=dataset, model="lenet5", optimizer=OPTIMIZER,
        batch_size=batch, batch_size_requested=batch, lr=0.01, lr_scaling=LrScaling(),
        epochs=epochs, target_accuracy=1.0, seed=0, device=device,
        noise_scale=NoiseScaleSettings(enabled=instruments),
        trajectory=TrajectorySettings(enabled=instruments if trajectory is None else trajectory),
    )  # fmt: skip


def engine_epochs(config: RunConfig, data: Data) -> Epochs:
    """The engine as a run uses it. An epoch's time is the wall time from the previous epoch's
    end to this one's, less its evaluation: so time spent measuring the noise scale, which the
    session keeps out of its epoch times, is counted here."""
    run = train_run(config, data)
    start = time.perf_counter()
    for event in run:
        if isinstance(event, EpochEnded):
            yield time.perf_counter() - start - event.record.eval_seconds
            start = time.perf_counter()


def minimal_epochs(data: Data, device: str, batch: int) -> Epochs:
    """The loop one would write by hand over tensors already on the device."""
    model, optimizer = fresh_model(data, device)
    x, y, n = data.train_x, data.train_y, data.n_train
    while True:
        start = time.perf_counter()
        order = torch.randperm(n).to(device)
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
        synchronize(torch.device(device))
        yield time.perf_counter() - start


def dataloader_epochs(data: Data, device: str, batch: int) -> Epochs:
    """The textbook loop: a CPU TensorDataset, a shuffling DataLoader, copies to the device."""
    model, optimizer = fresh_model(data, device)
    loader = DataLoader(
        TensorDataset(data.train_x.cpu(), data.train_y.cpu()), batch_size=batch, shuffle=True
    )
    while True:
        start = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        synchronize(torch.device(device))
        yield time.perf_counter() - start


def interleaved(methods: dict[str, Epochs], epochs: int, threads: int) -> dict[str, list[float]]:
    """Each method's epoch times, one epoch of each in turn, the order rotating every round."""
    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(epochs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            torch.set_num_threads(threads)  # the engine sets its own; the loops get the same
            times[name].append(next(methods[name]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--batch-sizes", default="1,8,32,128,512")
    parser.add_argument("--dataset", default="digits", help="digits, or an IDX set on disk")
    parser.add_argument("--train-subset", type=int, help="train on this many samples")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_data(args.dataset, train_subset=args.train_subset).to(device)
    n = data.n_train
    print(f"device {device}, torch {torch.__version__}, torch's default {DEFAULT_THREADS} threads")
    print(
        f"LeNet-5 + SGD on {n:,} {args.dataset} samples, {args.epochs} interleaved epochs "
        "(the first is warm-up and left out)\n"
    )
    print(
        f"{'batch':>6} {'threads':>7} {'minimal':>9} {'loader':>9} {'engine':>9} {'+instr':>9}"
        f"  {'engine/minimal':>16}  {'+instr/minimal':>16}"
    )
    print(f"{'':>6} {'':>7} {'samples/s (median epoch)':>39}  {'median (lowest)':>16}  "
          f"{'median (lowest)':>16}")  # fmt: skip
    for batch in map(int, args.batch_sizes.split(",")):
        # The engine picks its CPU thread count per batch size; the loops it is compared with
        # get the same count, so that the figures compare loops, not thread settings.
        config = run_config(device, batch, args.epochs, dataset=args.dataset)
        threads = cpu_threads(config)
        with_instruments = run_config(device, batch, args.epochs, True, dataset=args.dataset)
        methods: dict[str, Epochs] = {
            "minimal": minimal_epochs(data, device, batch),
            "loader": dataloader_epochs(data, device, batch),
            "engine": engine_epochs(config, data),
            "instr": engine_epochs(with_instruments, data),
        }
        times = {name: t[1:] for name, t in interleaved(methods, args.epochs, threads).items()}
        rates = "".join(f" {n / statistics.median(times[m]):>9,.0f}" for m in methods)
        print(
            f"{batch:>6} {threads:>7}{rates}  {share_of_minimal(times, 'engine'):>16}  "
            f"{share_of_minimal(times, 'instr'):>16}",
            flush=True,
        )


def share_of_minimal(times: dict[str, list[float]], name: str) -> str:
    """A method's speed as a share of the minimal loop's, round by round: median (lowest)."""
    shares = [m / t for m, t in zip(times["minimal"], times[name], strict=True)]
    return f"{statistics.median(shares):>7.1%} ({min(shares):.1%})"


if __name__ == "__main__":
    main()
