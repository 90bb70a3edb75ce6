"""Does the app slow training down, and does training slow the app down?

Runs the same preset headless (``bslab --headless``, its own process) and in the app (Textual's
headless driver at a real terminal size, live charts redrawing), alternating so that a busy
machine hurts both alike, and prints:

- throughput: training samples per second of the whole sweep (sum of samples / sum of training
  seconds, from the session files), app / headless;
- the app process's CPU use while training (in ``process`` mode: the UI's own cost);
- key latency while training: from a key press (``x``, which also redraws both charts) being
  posted to its handler running on the UI thread.

    BSLAB_OFFLINE=1 .venv/bin/python benchmarks/app_overhead.py presets/quickstart.json \
        --batch-sizes 16 64 full --epochs 2 --mode process thread --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textual import events

from tui_lab.app.app import BslabApp
from tui_lab.core.storage import load_preset, save_model

KEY_INTERVAL = 0.5  # seconds between key presses while training


def sweep_throughput(folder: Path) -> float:
    sessions = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    samples = sum(s["epochs"][-1]["samples_seen"] for s in sessions if s["epochs"])
    seconds = sum(s["summary"]["train_seconds"] for s in sessions if s["summary"])
    return samples / seconds


def run_headless(preset_path: Path, out: Path) -> float:
    env = {**os.environ, "BSLAB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "tui_lab.cli.main",
        "--headless",
        str(preset_path),
        "--out",
        str(out),
    ]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return sweep_throughput(out)


async def run_in_app(preset_path: Path, out: Path, mode: str, size: tuple[int, int]):
    """Throughput and the key latencies (seconds) of one sweep trained by the app."""
    app = BslabApp(preset=load_preset(preset_path), out_dir=out, start=True, worker_mode=mode)
    latencies: list[float] = []
    async with app.run_test(size=size) as pilot:
        screen = app.train_screen
        handled: list[float] = []
        original = screen.action_cycle_x_axis

        def timed_action() -> None:
            handled.append(time.perf_counter())
            original()

        screen.action_cycle_x_axis = timed_action  # type: ignore[method-assign]
        while not screen.sweep.runs and not screen.sweep.failure:  # loading, child start-up
            await asyncio.sleep(0.05)
        if screen.sweep.failure:
            raise SystemExit(f"the sweep failed in the app: {screen.sweep.failure}")
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        while screen.running:
            await asyncio.sleep(KEY_INTERVAL)
            if not screen.running or screen.sweep.current is None:
                continue
            pressed = time.perf_counter()
            app.post_message(events.Key("x", "x"))
            count = len(handled)
            while len(handled) == count:
                await asyncio.sleep(0.001)
            latencies.append(handled[-1] - pressed)
        cpu_share = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
        await pilot.pause()
    print(f"  app process used {cpu_share:.0%} of one core while training ({mode})")
    return sweep_throughput(out), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("preset", type=Path)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-sizes", nargs="+")
    parser.add_argument("--mode", nargs="+", default=["process", "thread"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", default="200x50", help="terminal size, e.g. 80x24")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    preset = load_preset(args.preset)
    update: dict = {"device": "cpu"} if preset.device == "auto" else {}
    if args.epochs:
        update["epochs"] = args.epochs
    if args.batch_sizes:
        update["batch_sizes"] = [b if b == "full" else int(b) for b in args.batch_sizes]
    root = Path(tempfile.mkdtemp(prefix="bslab-overhead-"))
    preset_path = root / "preset.json"
    save_model(preset.model_copy(update=update), preset_path)

    headless: list[float] = []
    in_app: dict[str, list[float]] = {mode: [] for mode in args.mode}
    keys: dict[str, list[float]] = {mode: [] for mode in args.mode}
    for repeat in range(args.repeats):
        headless.append(run_headless(preset_path, root / f"headless-{repeat}"))
        print(f"headless      {headless[-1]:9.0f} samples/s", flush=True)
        for mode in args.mode:
            out = root / f"{mode}-{repeat}"
            throughput, latencies = asyncio.run(run_in_app(preset_path, out, mode, size))
            in_app[mode].append(throughput)
            keys[mode] += latencies
            print(f"app ({mode:7}) {throughput:9.0f} samples/s", flush=True)

    base = statistics.median(headless)
    print(f"\nheadless median {base:.0f} samples/s ({args.repeats} runs, terminal {args.size})")
    for mode in args.mode:
        ratio = statistics.median(in_app[mode]) / base
        lat = sorted(keys[mode])
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
        print(
            f"app {mode:7}: throughput {ratio:.1%} of headless; key latency over {len(lat)} "
            f"presses: median {1000 * statistics.median(lat):.1f} ms, p95 {1000 * p95:.1f} ms, "
            f"max {1000 * max(lat):.1f} ms"
            if lat
            else f"app {mode:7}: throughput {ratio:.1%} of headless; no key presses measured"
        )


if __name__ == "__main__":
    main()
