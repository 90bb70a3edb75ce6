"""How long does ``bslab compare DIR --tui`` take to open 100, 500 and 2,000 sessions, and does
it stay responsive once open?

Trains one small real run (offline digits, an MLP, 12 epochs: a full-size loss curve), copies
its session N times into a folder as runs of N/6 sweeps at six batch sizes, then opens the
Compare screen on that folder in Textual's headless driver at 120×40 and prints, per size:

- start-up: from creating the app until every session is in the picker and the table shows the
  ticked runs (what a user waits for);
- key latency once open: ↓ (move in the picker) and space (tick a run: charts and table redraw),
  from the key being posted to the screen being idle again;
- ``a`` (tick all / none): one bulk selection, however many runs.

    BSLAB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/compare_tui.py --sizes 100 500 2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tui_lab.app.app import BslabApp
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.core.storage import save_model
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import Session, TrainPreset

BATCH_SIZES = (1, 8, 32, 128, 512, 400)
KEY_PRESSES = 10


def template_session(folder: Path) -> Session:
    preset = TrainPreset.model_validate(
        {
            "name": "bench",
            "dataset": "digits",
            "train_subset": 400,
            "model": "mlp",
            "batch_sizes": [32],
            "epochs": 12,
            "device": "cpu",
            "trajectory": {"enabled": False},
        }
    )
    sessions = [
        event.session
        for event in run_sweep(prepare_sweep(preset, out_dir=folder))
        if getattr(event, "final", False)
    ]
    return sessions[0]


def write_sessions(template: Session, folder: Path, count: int) -> None:
    for index in range(count):
        sweep, slot = divmod(index, len(BATCH_SIZES))
        batch = BATCH_SIZES[slot]
        config = template.config.model_copy(
            update={
                "preset_name": f"sweep{sweep:04}",
                "batch_size": batch,
                "batch_size_requested": "full" if batch == 400 else batch,
            }
        )
        session = template.model_copy(
            update={
                "id": f"{index:016x}",
                "config": config,
                "created": template.created + timedelta(minutes=sweep),
            }
        )
        save_model(session, folder / f"sweep{sweep:04}-b{batch}-{index}.json")


async def measure(folder: Path, count: int) -> dict[str, float]:
    started = time.perf_counter()
    app = BslabApp(compare_paths=[folder])
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            screen = app.screen
            if isinstance(screen, CompareScreen) and screen.ready:
                break
            await pilot.pause(0.01)
        startup = time.perf_counter() - started
        assert screen.picker.option_count == count, screen.picker.option_count
        await pilot.wait_for_scheduled_animations()
        screen.picker.focus()
        latencies: dict[str, list[float]] = {"down": [], "space": []}
        for _ in range(KEY_PRESSES):
            for key in ("down", "space"):
                begin = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                latencies[key].append(time.perf_counter() - begin)
        begin = time.perf_counter()
        await pilot.press("a")
        await pilot.pause()
        select_all = time.perf_counter() - begin
    return {
        "startup": startup,
        "down": statistics.median(latencies["down"]),
        "space": statistics.median(latencies["space"]),
        "space_max": max(latencies["space"]),
        "select_all": select_all,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        template = template_session(Path(tmp))
        print(
            f"{'sessions':>8}  {'start-up s (min/median)':>24}  {'↓ ms':>6}  {'space ms':>8}  "
            f"{'space max':>9}  {'a (all) ms':>10}"
        )
        for count in args.sizes:
            folder = Path(tmp) / f"n{count}"
            folder.mkdir()
            write_sessions(template, folder, count)
            results = [asyncio.run(measure(folder, count)) for _ in range(args.repeats)]
            startups = [r["startup"] for r in results]
            last = results[-1]
            print(
                f"{count:>8}  {min(startups):>11.2f} / {statistics.median(startups):<10.2f}  "
                f"{1000 * last['down']:>6.0f}  {1000 * last['space']:>8.0f}  "
                f"{1000 * last['space_max']:>9.0f}  {1000 * last['select_all']:>10.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
