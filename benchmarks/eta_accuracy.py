"""How close the Train screen's sweep ETA comes to the real end (issue 21: within 1.5× once a
quarter of the sweep is done).

Trains a preset through ``run_sweep`` as the app does, feeds every event to the app's
``LiveSweep`` and asks for its ETA after each epoch; when the sweep has ended, compares each
estimate with the time that was really left. Prints the ratio estimate / real at fixed points
of the sweep's wall time, the worst ratio from a quarter of it to 90% (past that, the
seconds left are too few for a ratio to mean much), and the end each estimate predicts against
the real one.

    python benchmarks/eta_accuracy.py                                  # shallue-digits, 120 runs
    python benchmarks/eta_accuracy.py presets/quickstart.json --parallel 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.core.storage import load_preset
from tui_lab.run.events import EpochEnded
from tui_lab.run.sweep import prepare_sweep, run_sweep

CHECKPOINTS = (0.1, 0.25, 0.5, 0.75, 0.9)
GOAL = 1.5


def measured_etas(preset_path: Path, parallel: str) -> tuple[float, list[tuple[float, float]]]:
    """The sweep's wall seconds and (elapsed, ETA) after every epoch that had an estimate."""
    live = LiveSweep()
    estimates: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as out:
        prepared = prepare_sweep(load_preset(preset_path), out_dir=Path(out), parallel=parallel)
        start = time.perf_counter()
        for event in run_sweep(prepared):
            live.apply(event)
            eta = live.eta_seconds() if isinstance(event, EpochEnded) else None
            if eta is not None:
                estimates.append((time.perf_counter() - start, eta))
        return time.perf_counter() - start, estimates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", type=Path, default=Path("presets/shallue-digits.json"))
    parser.add_argument("--parallel", default="auto", help="runs at once: N or auto")
    args = parser.parse_args()
    total, estimates = measured_etas(args.preset, args.parallel)
    print(f"{args.preset}: the sweep took {total:.1f} s (parallel {args.parallel})")
    print(f"{'at':>5} {'elapsed s':>10} {'ETA s':>8} {'real left s':>12} {'ETA/real':>9}")
    ratios, ends = [], []
    for elapsed, eta in estimates:
        if elapsed >= 0.25 * total:
            ends.append((elapsed + eta) / total)
        left = total - elapsed
        if 0.25 * total <= elapsed <= 0.9 * total:  # the last seconds left make any ratio wild
            ratios.append(eta / left)
    for point in CHECKPOINTS:
        elapsed, eta = min(estimates, key=lambda e: abs(e[0] - point * total))
        left = total - elapsed
        print(f"{point:>5.0%} {elapsed:>10.1f} {eta:>8.1f} {left:>12.1f} {eta / left:>9.2f}")
    if ratios:
        worst = max(max(ratios), 1 / min(ratios))
        verdict = "within" if worst <= GOAL else "outside"
        print(
            f"from 25% to 90%: ETA/real {min(ratios):.2f}–{max(ratios):.2f} over {len(ratios)} "
            f"estimates: {verdict} {GOAL}× (worst {worst:.2f}×)"
        )
        print(f"from 25% on: the end it predicts / the real end {min(ends):.2f}–{max(ends):.2f}")


if __name__ == "__main__":
    main()
