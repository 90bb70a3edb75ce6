"""What measuring the gradient noise scale costs, at the default cadence, per batch size.

Each batch size trains LeNet-5 on the offline digits with the noise scale on (default settings:
a 1,024-sample probe, at most twice an epoch, at most 5% of the training time, and once where
the run reaches its target). Two figures per run: the time spent measuring against the run's
training time (both timed inside the same run, so that a busy machine slows both alike), and
the extra wall time against the same run with the noise scale off (interleaved; noisy when the
machine is busy). A last line times one measurement.
Usage: python benchmarks/noise_scale_cost.py [--device cpu|cuda] [--epochs 8] [--repeats 2]
       [--dataset fashion-mnist --train-subset 8000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from throughput import fresh_model, run_config

from tui_lab.analysis.noise_scale import measure
from tui_lab.core.data import load_data
from tui_lab.core.devices import resolve_device, synchronize
from tui_lab.run.engine import NoiseProbe, train_run
from tui_lab.run.events import EpochEnded, RunEnded, StepStats
from tui_lab.run.policy import cpu_threads
from tui_lab.schema.analysis import NoiseScaleSettings


def timed_run(
    device: str, batch: int, epochs: int, noise: bool, data, dataset: str, target: float
) -> tuple[float, float, int]:
    """(training seconds, seconds spent measuring, measurements) of one engine run."""
    config = run_config(device, batch, epochs, instruments=noise, trajectory=False, dataset=dataset)
    config = config.model_copy(update={"target_accuracy": target})
    measuring = [0.0]
    original = NoiseProbe.measure

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            measuring[0] += time.perf_counter() - start

    NoiseProbe.measure = timed  # type: ignore[method-assign]
    try:
        train, count = 0.0, 0
        for event in train_run(config, data):
            if isinstance(event, EpochEnded):
                train += event.record.train_seconds
            if isinstance(event, (StepStats, EpochEnded)):
                count += len(event.noise_scale)
            if isinstance(event, RunEnded) and event.status != "completed":
                raise RuntimeError(event.message)
    finally:
        NoiseProbe.measure = original  # type: ignore[method-assign]
    return train, measuring[0], count


def probe_seconds(data, device, probe: int, repeats: int = 3) -> float:
    model, _ = fresh_model(data, device)
    x, y = data.train_x[:probe], data.train_y[:probe]
    times = []
    for _ in range(repeats):
        synchronize(torch.device(device))
        start = time.perf_counter()
        measure(model, F.cross_entropy, x, y, data.n_train)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,8,32,128,512,full")
    parser.add_argument("--dataset", default="digits", help="digits, or an IDX set on disk")
    parser.add_argument("--train-subset", type=int, help="train on this many samples")
    parser.add_argument(
        "--target",
        type=float,
        default=0.95,
        help="a run that reaches it is measured there once more",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_data(args.dataset, train_subset=args.train_subset).to(device)
    n = data.n_train
    settings = NoiseScaleSettings()
    print(
        f"device {device}, torch {torch.__version__}, LeNet-5 on {n:,} {args.dataset} samples, "
        f"{args.epochs} epochs"
    )
    print(
        f"default cadence: probe {settings.probe_size}, at most {settings.per_epoch:g} per epoch, "
        f"at most {settings.time_share:.0%} of training time\n"
    )
    print(
        f"{'batch':>6} {'train s':>8} {'measures':>9} {'share min':>10} {'share med':>10} "
        f"{'wall+ min':>10} {'wall+ med':>10}"
    )
    for text in args.batch_sizes.split(","):
        batch = n if text == "full" else int(text)
        torch.set_num_threads(cpu_threads(run_config(device, batch, args.epochs)))
        shares, walls, trains, counts = [], [], [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            start = time.perf_counter()
            timed_run(device, batch, args.epochs, False, data, args.dataset, args.target)
            middle = time.perf_counter()
            train, measuring, count = timed_run(
                device, batch, args.epochs, True, data, args.dataset, args.target
            )
            end = time.perf_counter()
            shares.append(measuring / train)
            walls.append((end - middle) / (middle - start) - 1)
            trains.append(train)
            counts.append(count)
        print(
            f"{text:>6} {statistics.median(trains):>8.2f} {statistics.median(counts):>9.0f} "
            f"{min(shares):>10.1%} {statistics.median(shares):>10.1%} "
            f"{min(walls):>10.1%} {statistics.median(walls):>10.1%}",
            flush=True,
        )
    probe = min(settings.probe_size, n)
    torch.set_num_threads(cpu_threads(run_config(device, n, 1)))
    one = probe_seconds(data, device, probe)
    print(f"\none measurement ({probe} per-sample gradients): {one * 1000:.0f} ms")


if __name__ == "__main__":
    main()
