"""``bslab screenshots``: SVG (and PNG) pictures of every screen, taken during a real sweep.

The README shows these, so they must show what a user would see: the app is driven by Textual's
test pilot while a short sweep really trains (offline digits, LeNet-5, a few batch sizes), and
each picture is taken once the screen has something to show. PNGs come from ``rsvg-convert``
or, failing that, ``cairosvg``; without either only the SVGs are written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot

from tui_lab.errors import BadInput
from tui_lab.schema import TrainPreset
from tui_lab.schema.trajectory import TrajectorySettings

MIN_SIZE = (80, 24)  # the smallest terminal the app is laid out for
PNG_ZOOM = 0.75  # Textual's SVG is ~12 px per column: 0.75 keeps the text sharp, the files small
WAIT_SECONDS = 300.0  # a slow machine; a sweep that never gets there is an error, not a hang
REDRAW_SECONDS = 0.6  # the charts redraw on a throttle: let one pass before a picture
Convert = Callable[[Path, Path], None]


def screenshot_preset() -> TrainPreset:
    """About half a minute on 2 CPU cores: enough epochs for curves, batch sizes that differ."""
    return TrainPreset(
        name="screenshots",
        description="Offline digits, LeNet-5, SGD with momentum: a short batch-size sweep.",
        dataset="digits",
        train_subset=600,
        model="lenet5",
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
        batch_sizes=[8, 32, 128, "full"],
        epochs=6,
        target_accuracy=0.9,
        device="cpu",
        seed=0,
        trajectory=TrajectorySettings(grid_resolution=11, eval_samples=128),
    )


@dataclass(frozen=True)
class Shot:
    """One picture: its file stem and the README's caption for it."""

    name: str
    caption: str


SHOTS = (
    Shot("setup", "Setup (F2): the sweep's preset, ready to start with ctrl+r."),
    Shot("train-live", "Train (F3) mid-sweep: live loss and accuracy of every batch size."),
    Shot("train-done", "Train at the end of the sweep: every run completed and saved."),
    Shot("compare", "Compare (F4): the saved runs overlaid, and the batch-size table."),
    Shot("sketches", "Sketches (k on Compare): each run's path in its top-2 PCA plane."),
    Shot("paraboloid", "The paraboloid lab (F5): optimizers' paths on a linear neuron's bowl."),
    Shot("help", "Help (F1): the keys of the screen below, and the ideas in a few lines."),
)


def parse_size(text: str) -> tuple[int, int]:
    """``100x30`` as (columns, rows), at least the app's smallest layout."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise BadInput(f"expected COLUMNSxROWS like 100x30, got {text!r}", field="--size") from None
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise BadInput(f"needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}, got {text}", field="--size")
    return width, height


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary name beside ``path``, then rename: never a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def find_converter() -> Convert | None:
    """An SVG → PNG converter: ``rsvg-convert`` (librsvg2-bin), else ``cairosvg``, else None."""
    rsvg = shutil.which("rsvg-convert")
    if rsvg:
        return lambda svg, png: subprocess.run(
            [rsvg, "--zoom", str(PNG_ZOOM), "--output", str(png), str(svg)], check=True
        )
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda svg, png: cairosvg.svg2png(url=str(svg), write_to=str(png), scale=PNG_ZOOM)


async def wait_for(pilot: Pilot, what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: gave up waiting for {what}")
        await pilot.pause(0.1)


def mid_sweep(sweep) -> bool:  # type: ignore[no-untyped-def]
    """A middle run is halfway through its epochs: earlier runs' curves are all on screen."""
    if sweep.ended:
        return True
    middle = len(sweep.runs) // 2
    if sweep.current is None or sweep.current < middle:
        return False
    run = sweep.runs[middle]
    return sweep.current > middle or run.epoch > max(1, run.config.epochs // 2)


async def drive(app, pilot: Pilot, take: Callable[[str], None]) -> None:  # type: ignore[no-untyped-def]
    """Walk the app through every screen, taking the pictures in ``SHOTS`` order."""
    from tui_lab.app.screens.compare import CompareScreen
    from tui_lab.app.screens.paraboloid import ParaboloidScreen
    from tui_lab.app.screens.sketches import SketchesScreen

    await pilot.pause(REDRAW_SECONDS)
    take("setup")

    await pilot.press("ctrl+r")
    train = app.train_screen
    await wait_for(pilot, "the sweep's middle run", lambda: mid_sweep(train.sweep))
    await pilot.pause(REDRAW_SECONDS)
    take("train-live")
    await wait_for(pilot, "the end of the sweep", lambda: train.sweep.ended and not train.running)
    await pilot.pause(REDRAW_SECONDS)
    take("train-done")

    await pilot.press("f4")
    await wait_for(
        pilot,
        "the sessions on Compare",
        lambda: isinstance(app.screen, CompareScreen) and len(app.screen.selected_sessions) > 1,
    )
    await pilot.pause(REDRAW_SECONDS)
    take("compare")

    await pilot.press("k")
    await wait_for(pilot, "the sketches", lambda: isinstance(app.screen, SketchesScreen))
    await pilot.pause(REDRAW_SECONDS)
    take("sketches")
    await pilot.press("escape")

    await pilot.press("f5")
    if not isinstance(app.screen, ParaboloidScreen):  # not an app mode (yet): show it anyway
        await app.push_screen(ParaboloidScreen())
    lab = app.screen
    await wait_for(
        pilot, "the paraboloid lab", lambda: lab.session is not None and lab.session.preset == lab.preset
    )
    await pilot.pause(REDRAW_SECONDS)
    take("paraboloid")

    await pilot.press("f1")
    await pilot.pause(REDRAW_SECONDS)
    take("help")


async def capture(
    preset: TrainPreset, out: Path, size: tuple[int, int], sessions: Path
) -> list[Path]:
    """Run the app on ``preset`` (sessions into ``sessions``); the SVGs written into ``out``."""
    from tui_lab.app.app import BslabApp

    app = BslabApp(preset=preset, out_dir=sessions, worker_mode="thread")
    written: list[Path] = []

    def take(name: str) -> None:
        svg = out / f"{name}.svg"
        replace_atomically(svg, lambda partial: app.save_screenshot(partial.name, str(out)))
        written.append(svg)
        print(f"  {svg}", file=sys.stderr)

    async with app.run_test(size=size) as pilot:
        await drive(app, pilot, take)
    return written


def convert_all(svgs: Sequence[Path], convert: Convert) -> list[Path]:
    pngs = []
    for svg in svgs:
        png = svg.with_suffix(".png")
        replace_atomically(png, lambda partial, svg=svg: convert(svg, partial))
        pngs.append(png)
    return pngs


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bslab screenshots",
        description="Train a short real sweep in the app and save an SVG (and PNG) of each screen.",
    )
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="(./screenshots)")
    parser.add_argument("--size", type=parse_size, default="100x30", help="COLUMNSxROWS (100x30)")
    parser.add_argument("--no-png", action="store_true", help="write the SVGs only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bslab-screenshots-") as sessions:
        svgs = asyncio.run(capture(screenshot_preset(), args.out, args.size, Path(sessions)))
    convert = None if args.no_png else find_converter()
    if convert is not None:
        convert_all(svgs, convert)
    elif not args.no_png:
        print(
            "bslab screenshots: no SVG → PNG converter (install librsvg2-bin for rsvg-convert, "
            "or pip install cairosvg): wrote the SVGs only",
            file=sys.stderr,
        )
    print(f"{len(svgs)} screenshots in {args.out}/ ({time.monotonic() - started:.0f} s)")
    return 0
