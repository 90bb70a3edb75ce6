"""What a user waits for with a folder of 2,000 sessions: ``bslab compare DIR`` (the table),
``--format json``, ``--analysis`` and ``--tui`` (until the first table is on screen).

Builds the folder once (``--folder``, reused when it already holds sessions): one real run
trained offline (digits, an MLP, 20 epochs, trajectory sketch and noise scale on: a full-size
session) copied as sweeps of six batch sizes × two seeds, with a few broken files among them.
Each command runs as its own process (imports and start-up included), ``--tui`` in Textual's
headless driver at 80×24 (the process's wall time until the Compare screen is ready). Cold: a
new, empty cache folder (``XDG_CACHE_HOME``); warm: the same command again on that cache (bslab
keeps no cache of its own: the second run differs only by what the system keeps). Wall and CPU
seconds: on a machine busy with other work, CPU seconds say more. ``--trees`` times other
checkouts interleaved with this one, for a ratio taken in one run:

    BSLAB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/many_sessions.py --count 2000 \
        --folder /tmp/s2000 --trees . ../main
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tui_lab.schema import LossCurve, Session

BATCH_SIZES = (1, 8, 32, 128, 512, 400)
SEEDS = (0, 1)
BROKEN_EVERY = 500  # one broken file per this many sessions: the warnings' path is timed too

TUI_SCRIPT = """
import asyncio, sys, time
from pathlib import Path

from tui_lab.schema import LossCurve, Session
from tui_lab.app.app import BslabApp
from tui_lab.app.screens.compare import CompareScreen

async def main():
    app = BslabApp(compare_paths=[Path(sys.argv[1])])
    async with app.run_test(size=(80, 24)) as pilot:
        while not (isinstance(app.screen, CompareScreen) and app.screen.ready):
            await pilot.pause(0.01)

asyncio.run(main())
"""

COMMANDS: dict[str, list[str]] = {
    "compare": ["-m", "tui_lab", "compare"],
    "--format json": ["-m", "tui_lab", "compare", "--format", "json"],
    "--analysis": ["-m", "tui_lab", "compare", "--analysis"],
    "--tui (headless)": ["-c", TUI_SCRIPT],
}


def full_curve(session: Session) -> Session:
    """The run with a loss curve of the default 400 points (a long run's, downsampled)."""
    points = session.config.curve_points
    last = session.curve
    spread = [i / (points - 1) for i in range(points)]
    curve = LossCurve(
        step=[round(f * last.step[-1]) for f in spread],
        epoch=[f * last.epoch[-1] for f in spread],
        samples=[round(f * last.samples[-1]) for f in spread],
        seconds=[f * last.seconds[-1] for f in spread],
        loss=[last.loss[0] * (0.02 + math.exp(-5 * f)) * (1.1 - 0.2 * (i % 7) / 6)
              for i, f in enumerate(spread)],
    )  # fmt: skip
    return session.model_copy(update={"curve": curve})


def build_folder(folder: Path, count: int) -> None:
    """``count`` sessions copied from one real run, as sweeps of batch sizes and seeds."""
    from tui_lab.core.storage import save_model
    from tui_lab.run.sweep import prepare_sweep, run_sweep
    from tui_lab.schema import TrainPreset

    preset = TrainPreset.model_validate(
        {
            "name": "bench",
            "dataset": "digits",
            "train_subset": 400,
            "model": "mlp",
            "batch_sizes": [32],
            "epochs": 20,
            "device": "cpu",
            "noise_scale": {"enabled": True},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        finals = [
            e.session
            for e in run_sweep(prepare_sweep(preset, out_dir=Path(tmp)))
            if getattr(e, "final", False)
        ]
    template = full_curve(finals[0])
    per_sweep = len(BATCH_SIZES) * len(SEEDS)
    for index in range(count):
        sweep, slot = divmod(index, per_sweep)
        seed, batch = divmod(slot, len(BATCH_SIZES))
        batch = BATCH_SIZES[batch]
        config = template.config.model_copy(
            update={
                "preset_name": f"sweep{sweep:04}",
                "batch_size": batch,
                "batch_size_requested": "full" if batch == 400 else batch,
                "seed": SEEDS[seed],
            }
        )
        session = template.model_copy(
            update={
                "id": f"{index:016x}",
                "config": config,
                "created": template.created + timedelta(minutes=sweep),
            }
        )
        path = folder / f"sweep{sweep:04}-b{batch}-s{SEEDS[seed]}-{index}.json"
        save_model(session, path)
        if index % BROKEN_EVERY == BROKEN_EVERY - 1:  # cut short, as by a full disk
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], folder: Path, cache: Path, tree: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one command, as a process of its own running the code in
    ``tree`` (CPU time tells more than wall time on a machine busy with other work); it must
    succeed."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "80", "PYTHONPATH": str(tree)}
    start, cpu = time.perf_counter(), cpu_of_children()
    done = subprocess.run(
        [sys.executable, *args, str(folder.resolve())],
        env=env,
        cwd=tree,  # python puts its working folder first on the path
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{args} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return seconds, cpu_of_children() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, help="keep the sessions here (built if empty)")
    parser.add_argument("--only", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    parser.add_argument(
        "--trees",
        nargs="+",
        type=lambda tree: Path(tree).resolve(),
        default=[Path(__file__).resolve().parents[1]],
        help="source trees to time, interleaved (e.g. this one and another checkout: a ratio)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "sessions"
        folder.mkdir(parents=True, exist_ok=True)
        if not any(folder.glob("*.json")):
            build_folder(folder, args.count)
        files = list(folder.glob("*.json"))
        size = sum(f.stat().st_size for f in files) / len(files) / 1024
        print(f"{len(files):,} files of {size:.0f} KiB in {folder}; {args.repeats} repeats")
        print(
            f"{'':<17}{'cold (new cache)':^27}{'warm (second run)':^27}\n"
            f"{'command':<17}{'wall s min/med':>15}{'CPU s min/med':>14}"
            f"{'wall s min/med':>15}{'CPU s min/med':>14}  tree"
        )
        for name in args.only:
            cold: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
            warm: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
            for repeat in range(args.repeats):
                for index, tree in enumerate(args.trees):
                    cache = Path(tmp) / f"cache-{name.strip('-').split()[0]}-{repeat}-{index}"
                    cold[tree].append(timed(COMMANDS[name], folder, cache, tree))
                    warm[tree].append(timed(COMMANDS[name], folder, cache, tree))
            for tree in args.trees:
                cells = [
                    f"{min(column):>7.2f}/{statistics.median(column):<6.2f}"
                    for runs in (cold[tree], warm[tree])
                    for column in zip(*runs, strict=True)
                ]
                print(f"{name:<17}{' '.join(cells)}  {tree}", flush=True)
        print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
