"""The reference sweep, one run after another against several at once; then time per step.

LeNet-5 + SGD(momentum) on a 60k 28x28 set (Debian's Fashion-MNIST stands in for MNIST:
``apt-get install dataset-fashion-mnist``), batch 1 to the full set, default instruments on.
Each round trains the sweep sequentially (``parallel: 1``) and concurrently (``--parallel``),
interleaved, and prints the wall time of each (process start-up included) and every run's
samples/s (training time only). Then, with ``--steps``, the per-step table of step_times.py.

    python benchmarks/sweep.py                                   # the reference, 1 epoch each
    python benchmarks/sweep.py --dataset digits --batch-sizes 1,8,32,128,full --rounds 3
    python benchmarks/sweep.py --device cuda --epochs 20 --steps # on a GPU box
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # step_times, beside this file

from step_times import step_table

from tui_lab.run.events import SessionSaved
from tui_lab.run.policy import available_cores
from tui_lab.run.process_pool import capacity
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import Session, TrainPreset

REFERENCE_BATCHES = "1,8,32,128,512,2048,8192,full"


def reference_preset(args: argparse.Namespace) -> TrainPreset:
    batches = [b if b == "full" else int(b) for b in args.batch_sizes.split(",")]
    return TrainPreset(
        name="reference",
        dataset=args.dataset,
        train_subset=args.train_subset,
        model="lenet5",
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9},
        batch_sizes=batches,
        epochs=args.epochs,
        device=args.device,
    )


def timed_sweep(preset: TrainPreset, parallel: int | str) -> tuple[float, list[Session]]:
    """Wall seconds of the whole sweep (start-up included) and its final sessions."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        prepared = prepare_sweep(preset, out_dir=Path(out), parallel=parallel)
        sessions = [
            e.session for e in run_sweep(prepared) if isinstance(e, SessionSaved) and e.final
        ]
        return time.perf_counter() - start, sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist or digits")
    parser.add_argument("--train-subset", type=int, help="train on this many samples only")
    parser.add_argument("--batch-sizes", default=REFERENCE_BATCHES)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel", default="auto", help="N or auto, for the concurrent sweep")
    parser.add_argument("--rounds", type=int, default=1, help="sequential/concurrent pairs")
    parser.add_argument("--steps", action="store_true", help="also print the per-step table")
    parser.add_argument("--step-batches", default="1,8,32,128")
    args = parser.parse_args()
    parallel = int(args.parallel) if args.parallel.isdigit() else args.parallel
    preset = reference_preset(args)
    probe = prepare_sweep(preset, out_dir=Path(tempfile.gettempdir()), parallel=parallel)
    slots = capacity(probe.runs, parallel).slots
    print(
        f"{args.dataset}: {probe.data.n_train} samples, {len(probe.runs)} runs x {args.epochs} "
        f"epoch(s) on {probe.runs[0].device}; {available_cores()} cores; concurrent: {slots} slots"
    )
    walls: dict[str, list[float]] = {"sequential": [], "concurrent": []}
    rates: dict[str, dict[str, list[float]]] = {"sequential": {}, "concurrent": {}}
    for _ in range(args.rounds):
        for mode, p in (("sequential", 1), ("concurrent", parallel)):
            wall, sessions = timed_sweep(preset, p)
            walls[mode].append(wall)
            for s in sessions:
                rate = s.summary.samples_per_second if s.summary else None
                rates[mode].setdefault(s.config.label(), []).append(rate or 0.0)
            print(f"  {mode:>10}: {wall:8.1f} s", flush=True)
    print(f"\n{'run':>16} {'samples/s seq':>14} {'samples/s conc':>15}  (medians)")
    for label, seq in rates["sequential"].items():
        conc = rates["concurrent"].get(label, [0.0])
        print(f"{label:>16} {statistics.median(seq):>14,.0f} {statistics.median(conc):>15,.0f}")
    seq, conc = walls["sequential"], walls["concurrent"]
    ratios = sorted(s / c for s, c in zip(seq, conc, strict=True))
    print(
        f"\nwall: sequential min {min(seq):.1f} s median {statistics.median(seq):.1f} s; "
        f"concurrent min {min(conc):.1f} s median {statistics.median(conc):.1f} s; "
        f"speed-up per round min {ratios[0]:.2f}x median {statistics.median(ratios):.2f}x"
    )
    if args.steps:
        device = "cuda:0" if probe.runs[0].device == "cuda" else probe.runs[0].device
        step_table(device, [int(b) for b in args.step_batches.split(",")], 300, 3)


if __name__ == "__main__":
    main()
