"""``bslab --headless paraboloid.json``: run the paraboloid lab, save its session, print it.

The lab takes seconds, so there are no progress bars: the output is the sketch itself and the
table of where each path ended, as ``bslab sketch`` prints it later from the saved file.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from tui_lab.commands.sketch import show_paraboloid
from tui_lab.schema import ParaboloidPreset, ParaboloidSession
from tui_lab.sketches.paraboloid import run_paraboloid
from tui_lab.storage import ensure_writable_dir, save_model

EXIT_OK = 0


def paraboloid_filename(session: ParaboloidSession) -> str:
    stamp = session.created.strftime("%Y%m%d-%H%M%S")
    return f"{session.preset.name}-{stamp}-{session.id[-6:]}.json".replace(" ", "_")


def save_paraboloid_session(session: ParaboloidSession, out_dir: Path) -> Path:
    """Write the session atomically into ``out_dir`` (created if needed); returns its path."""
    path = ensure_writable_dir(out_dir) / paraboloid_filename(session)
    save_model(session, path)
    return path


def run_paraboloid_headless(
    preset: ParaboloidPreset,
    out_dir: Path,
    console: Console | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> int:
    """Run every path of the preset, save the session into ``out_dir``, print the sketch."""
    console = console or Console()
    ensure_writable_dir(out_dir)  # fail before computing, not after
    session = run_paraboloid(preset)
    path = save_paraboloid_session(session, out_dir)
    show_paraboloid(session, console, width or console.width, height)
    console.print(f"{len(session.paths)} paths in {session.compute_seconds:.1f} s → {path}")
    return EXIT_OK
