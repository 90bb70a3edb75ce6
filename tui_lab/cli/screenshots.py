"""``bslab screenshots``: SVG (and PNG) pictures of every screen, taken during a real sweep.

The README shows these, so they must show what a user would see: the app is driven by Textual's
test pilot while a short sweep really trains (offline digits, LeNet-5, a few batch sizes), and
each picture is taken once the screen has something to show. PNGs come from ``rsvg-convert``
or, failing that, ``cairosvg``; without either only the SVGs are written.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.cells import cell_len
from textual.pilot import Pilot

from tui_lab.app.app import BslabApp
from tui_lab.app.live_sweep import LiveSweep
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.paraboloid import ParaboloidScreen
from tui_lab.app.screens.sketches import SketchesScreen
from tui_lab.app.worker import WorkerMode
from tui_lab.cli import command_parser
from tui_lab.errors import BadInput
from tui_lab.schema import TrainPreset
from tui_lab.schema.trajectory import TrajectorySettings
from tui_lab.settings import SESSIONS_DIR

MIN_SIZE = (80, 24)  # the smallest terminal the app is laid out for
PNG_ZOOM = 0.75  # Textual's SVG is ~12 px per column: 0.75 keeps the text sharp, the files small
WAIT_SECONDS = 300.0  # a slow machine; a sweep that never gets there is an error, not a hang
REDRAW_SECONDS = 0.6  # the charts redraw on a throttle: let one pass before a picture
WORKER_MODE: WorkerMode = "process"  # as users run it, so the speeds in the pictures are real
# Textual writes each run of same-styled text as one element, spread to its cells by textLength.
TEXT_RUN = re.compile(
    r'<text (class="[^"]*") x="([\d.]+)" (y="[\d.]+") textLength="([\d.]+)" ([^>]*)>([^<]*)</text>'
)
Convert = Callable[[Path, Path], None]


def screenshot_preset() -> TrainPreset:
    """Half a minute on 2 CPU cores. Largest batch first, so that the slowest run, batch 8, is
    the one training in the mid-sweep picture, over the other runs' finished curves."""
    return TrainPreset(
        name="screenshots",
        description="Offline digits, LeNet-5, SGD with momentum: a short batch-size sweep.",
        dataset="digits",
        train_subset=800,
        model="lenet5",
        optimizer={"name": "sgd", "lr": 0.02, "momentum": 0.9},
        batch_sizes=["full", 128, 32, 8],
        epochs=12,
        target_accuracy=0.9,
        device="cpu",
        seed=0,
        trajectory=TrajectorySettings(grid_resolution=11, eval_samples=128),
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


def one_glyph_per_cell(svg: str) -> str:
    """Each character of a text run in its own element, at its own cell.

    SVG converters ignore ``textLength``, and the fonts they fall back on draw braille (plotext's
    lines) and some symbols wider than a cell: runs of them overrun their charts' frames.
    """

    def split(match: re.Match[str]) -> str:
        style, x, y, length, rest, escaped = match.groups()
        text = html.unescape(escaped)
        if len(text) < 2:
            return match.group(0)
        cell = float(length) / cell_len(text)
        elements, left = [], float(x)
        for char in text:
            if not char.isspace():
                glyph = html.escape(char, quote=False)
                elements.append(f'<text {style} x="{left:.1f}" {y} {rest}>{glyph}</text>')
            left += cell * cell_len(char)
        return "".join(elements)

    return TEXT_RUN.sub(split, svg)


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


def convert_all(svgs: Sequence[Path], convert: Convert) -> None:
    """A PNG beside each SVG, drawn from a cell-aligned copy (the SVG itself is left as is)."""
    for svg in svgs:
        png = svg.with_suffix(".png")
        aligned = png.with_name(f".{svg.name}.aligned")
        aligned.write_text(one_glyph_per_cell(svg.read_text(encoding="utf-8")), encoding="utf-8")
        try:
            replace_atomically(png, lambda partial, aligned=aligned: convert(aligned, partial))
        finally:
            aligned.unlink()


async def wait_for(pilot: Pilot, what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: gave up waiting for {what}")
        await pilot.pause(0.1)


def last_run_halfway(sweep: LiveSweep) -> bool:
    """The last run is halfway through its epochs: every other run's curves are on screen."""
    if sweep.ended:
        return True
    last = len(sweep.runs) - 1
    run = sweep.runs[last] if sweep.runs else None
    return sweep.current == last and run is not None and run.epoch > run.config.epochs // 2


async def drive(app: BslabApp, pilot: Pilot, take: Callable[[str], None]) -> None:
    """Walk the app through every screen, taking a picture of each once it has settled."""
    await pilot.pause(REDRAW_SECONDS)
    take("setup")

    await pilot.press("ctrl+r")
    train = app.train_screen
    await wait_for(pilot, "the sweep's last run", lambda: last_run_halfway(train.sweep))
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
    drawn = lambda: lab.session is not None and lab.session.preset == lab.preset  # noqa: E731
    await wait_for(pilot, "the paraboloid lab", drawn)
    await pilot.pause(REDRAW_SECONDS)
    take("paraboloid")

    await pilot.press("f1")
    await pilot.pause(REDRAW_SECONDS)
    take("help")


async def capture(preset: TrainPreset, out: Path, size: tuple[int, int]) -> list[Path]:
    """Run the app on ``preset`` (sessions into ./sessions); the SVGs written into ``out``."""
    app = BslabApp(preset=preset, out_dir=SESSIONS_DIR, worker_mode=WORKER_MODE)
    written: list[Path] = []

    def take(name: str) -> None:
        svg = out / f"{name}.svg"
        replace_atomically(svg, lambda partial: app.save_screenshot(partial.name, str(out)))
        written.append(svg)
        print(f"  {svg}", file=sys.stderr)

    async with app.run_test(size=size) as pilot:
        await drive(app, pilot, take)
    return written


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab screenshots",
        description="Train a short real sweep in the app and save an SVG (and PNG) of each screen.",
    )
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="(./screenshots)")
    parser.add_argument("--size", type=parse_size, default="100x30", help="COLUMNSxROWS (100x30)")
    parser.add_argument("--no-png", action="store_true", help="write the SVGs only")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    started, here = time.monotonic(), Path.cwd()
    with tempfile.TemporaryDirectory(prefix="bslab-screenshots-") as scratch:
        os.chdir(scratch)  # the pictures show ./sessions, as a user's run would, not a temp path
        try:
            svgs = asyncio.run(capture(screenshot_preset(), out, args.size))
        finally:
            os.chdir(here)
    convert = None if args.no_png else find_converter()
    if convert is not None:
        convert_all(svgs, convert)
    elif not args.no_png:
        print(
            "bslab screenshots: no SVG → PNG converter (install librsvg2-bin for rsvg-convert, "
            "or pip install cairosvg): wrote the SVGs only; any PNGs there are older",
            file=sys.stderr,
        )
    print(f"{len(svgs)} screenshots in {args.out}/ ({time.monotonic() - started:.0f} s)")
    return 0
