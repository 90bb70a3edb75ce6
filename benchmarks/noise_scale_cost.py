"""What measuring the gradient noise scale costs, at the default cadence, per batch size.

Each batch size trains LeNet-5 on the offline digits with the noise scale on (default settings:
a 1,024-sample probe, at most twice an epoch, at most 5% of the training time) and off, the two
interleaved and repeated; the figure is the extra wall time of a run (training and measuring,
evaluation excluded) over the run's time without it: min and median over the repeats.
A second table times one measurement against training the same number of samples.
Usage: python benchmarks/noise_scale_cost.py [--device cpu|cuda] [--epochs 4] [--repeats 3]
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
from tui_lab.run.engine import cpu_threads, train_run
from tui_lab.run.events import EpochEnded, RunEnded, StepStats
from tui_lab.schema.analysis import NoiseScaleSettings


def timed_run(device: str, batch: int, epochs: int, noise: bool, data) -> tuple[float, float, int]:
    """(training seconds, other seconds, measurements) of one engine run: the engine keeps
    measuring out of the epochs' training time, so it is in the other seconds (with set-up)."""
    config = run_config(device, batch, epochs, instruments=noise, trajectory=False)
    train = eval_seconds = 0.0
    count = 0
    start = time.perf_counter()
    for event in train_run(config, data):
        if isinstance(event, EpochEnded):
            train += event.record.train_seconds
            eval_seconds += event.record.eval_seconds
        if isinstance(event, (StepStats, EpochEnded)):
            count += len(event.noise_scale)
        if isinstance(event, RunEnded) and event.status != "completed":
            raise RuntimeError(event.message)
    return train, time.perf_counter() - start - eval_seconds - train, count


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
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,8,32,128,512,full")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_data("digits").to(device)
    n = data.n_train
    settings = NoiseScaleSettings()
    print(
        f"device {device}, torch {torch.__version__}, LeNet-5 on {n} digits, {args.epochs} epochs"
    )
    print(
        f"default cadence: probe {settings.probe_size}, at most {settings.per_epoch:g} per epoch, "
        f"at most {settings.time_share:.0%} of training time\n"
    )
    print(f"{'batch':>6} {'train s':>8} {'measures':>9} {'extra min':>10} {'extra med':>10}")
    for text in args.batch_sizes.split(","):
        batch = n if text == "full" else int(text)
        torch.set_num_threads(cpu_threads(run_config(device, batch, args.epochs)))
        extras, trains, counts = [], [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            bare, bare_other, _ = timed_run(device, batch, args.epochs, False, data)
            train, other, count = timed_run(device, batch, args.epochs, True, data)
            extras.append((train + other - bare - bare_other) / bare)
            trains.append(bare)
            counts.append(count)
        print(
            f"{text:>6} {statistics.median(trains):>8.2f} {statistics.median(counts):>9.0f} "
            f"{min(extras):>10.1%} {statistics.median(extras):>10.1%}",
            flush=True,
        )
    probe = min(settings.probe_size, n)
    torch.set_num_threads(cpu_threads(run_config(device, n, 1)))
    one = probe_seconds(data, device, probe)
    print(f"\none measurement ({probe} per-sample gradients): {one * 1000:.0f} ms")


if __name__ == "__main__":
    main()
