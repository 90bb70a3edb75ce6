"""``bslab sketch``: the saved sketches of sessions, printed side by side in the terminal.

Training sessions show their path in the PCA plane (Li et al. 2018), one panel each, so that
e.g. batch 8 and full batch can be read at a glance; a paraboloid session shows its paths over
the true contours, one panel per batch size, and a table of where each path ended.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tui_lab.cli import command_parser
from tui_lab.errors import BadInput
from tui_lab.schema import ParaboloidSession, Session

# Narrower than this, plotext's tick labels and legend crowd out the picture.
MIN_PANEL_WIDTH = 44
PANEL_GAP = 1
TRAJECTORY_HEIGHT = 24
PARABOLOID_HEIGHT = 30
PARABOLOID_PANEL_HEIGHT = 22
MIN_HEIGHT = 10

Panel = Callable[[int], list[str]]  # renders itself at a given width, as lines of equal width


def add_size_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=int, help="total width in columns (default: terminal)")
    parser.add_argument("--height", type=int, help="height of each sketch in rows")


def plot_size(args: argparse.Namespace, console: Console) -> tuple[int, int | None]:
    """(width, height) from the size flags: the terminal's width by default, height optional."""
    width = args.width or console.width
    if width < MIN_PANEL_WIDTH:
        raise BadInput(f"needs at least {MIN_PANEL_WIDTH} columns, got {width}", field="--width")
    if args.height is not None and args.height < MIN_HEIGHT:
        raise BadInput(f"needs at least {MIN_HEIGHT} rows, got {args.height}", field="--height")
    return width, args.height


def titled(text: str, title: str, width: int) -> list[str]:
    """A plotext figure's lines with its title row replaced by ``title``, cut to fit.

    plotext drops a title wider than the plot (leaving the row blank), and panels are narrow.
    """
    lines = text.splitlines()
    cut = title if len(title) <= width else title[: width - 1] + "…"
    return [cut.center(width), *lines[1:]]


def panel_grid(panels: Sequence[Panel], width: int, gap: int = PANEL_GAP) -> list[str]:
    """Panels left to right, as many per row as fit at ``MIN_PANEL_WIDTH``, rows top to bottom."""
    per_row = max(1, min(len(panels), (width + gap) // (MIN_PANEL_WIDTH + gap)))
    panel_width = (width - gap * (per_row - 1)) // per_row
    lines: list[str] = []
    for start in range(0, len(panels), per_row):
        rendered = [panel(panel_width) for panel in panels[start : start + per_row]]
        lines.extend((" " * gap).join(row) for row in zip(*rendered, strict=True))
    return lines


def print_lines(console: Console, lines: Sequence[str]) -> None:
    """Print plotext's ANSI text through rich, which drops the colours where there is no tty."""
    console.print(Text.from_ansi("\n".join(lines)), soft_wrap=True)


def trajectory_title(session: Session) -> str:
    config = session.config
    assert session.trajectory is not None
    first, second = session.trajectory.explained_variance
    accuracy = session.summary.final_accuracy if session.summary else None
    reached = f"  acc {accuracy:.1%}" if accuracy is not None else ""
    return f"{config.label()} lr={config.lr:.3g}  PCA {first:.0%}+{second:.0%}{reached}"


def trajectory_panel(session: Session, height: int) -> Panel:
    from tui_lab.report.trajectory import render_trajectory

    assert session.trajectory is not None
    sketch, label = session.trajectory, session.config.label()

    def render(width: int) -> list[str]:
        text = render_trajectory(sketch, width=width, height=height, label=label)
        return titled(text, trajectory_title(session), width)

    return render


def show_trajectories(
    sessions: Sequence[Session], console: Console, width: int, height: int = TRAJECTORY_HEIGHT
) -> None:
    print_lines(console, panel_grid([trajectory_panel(s, height) for s in sessions], width))
    console.print(
        "o start, x end (the final weights, at 0,0); each panel has its own plane and scale.",
        style="dim",
    )


def show_paraboloid(
    session: ParaboloidSession, console: Console, width: int, height: int | None = None
) -> None:
    """One panel per batch size (all optimizers in each), then the distances table."""
    from tui_lab.analysis.paraboloid import select_paths
    from tui_lab.report.paraboloid import render_paraboloid

    batch_sizes = list(dict.fromkeys(p.batch_size for p in session.paths))
    preset = session.preset
    alone = len(batch_sizes) == 1
    height = height or (PARABOLOID_HEIGHT if alone else PARABOLOID_PANEL_HEIGHT)

    def panel(batch_size: int | str) -> Panel:
        title = (
            f"batch {batch_size}: κ={preset.condition_number:g}, noise={preset.noise:g}, "
            f"n={preset.n_samples}, {preset.epochs} epochs"
        )
        paths = select_paths(session, batch_sizes=[batch_size])

        def render(panel_width: int) -> list[str]:
            text = render_paraboloid(session, paths, width=panel_width, height=height)
            return titled(text, title, panel_width)

        return render

    print_lines(console, panel_grid([panel(b) for b in batch_sizes], width))
    console.print("o start, x end, + the minimum; dotted rings: contours of the loss.", style="dim")
    first = session.paths[0]
    start = math.hypot(first.w1[0] - session.minimum[0], first.w2[0] - session.minimum[1])
    console.print(
        f"Distance to the minimum after {session.preset.epochs} epochs "
        f"(every path starts {start:.2f} away):"
    )
    console.print(distance_table(session))


def distance_table(session: ParaboloidSession) -> Table:
    """Distance to the minimum at the end of each path: optimizers down, batch sizes across."""
    table = Table()
    batch_sizes = list(dict.fromkeys(p.batch_size for p in session.paths))
    table.add_column("optimizer")
    for batch_size in batch_sizes:
        table.add_column(f"b={batch_size}", justify="right")
    by_optimizer: dict[str, dict[int | str, str]] = {}
    for path in session.paths:
        name = f"{path.optimizer.name} lr={path.optimizer.lr:g}"
        cell = "diverged" if path.diverged else f"{path.distance_to_minimum:.3f}"
        by_optimizer.setdefault(name, {})[path.batch_size] = cell
    for name, cells in by_optimizer.items():
        table.add_row(name, *(cells.get(b, "") for b in batch_sizes))
    return table


def why_no_sketch(session: Session) -> str:
    if session.status not in ("completed", "interrupted"):
        return f"the run ended {session.status}"
    return "the run was recorded with trajectory sketching off"


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab sketch",
        description="Print the trajectory sketches of training sessions side by side, "
        "or a paraboloid session's sketch.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="session files")
    add_size_flags(parser)
    args = parser.parse_args(argv)
    from tui_lab.core.storage import load_any_session

    console = Console()
    width, height = plot_size(args, console)
    trained: list[Session] = []
    drawn = 0
    for path in args.paths:
        session = load_any_session(path)
        if isinstance(session, ParaboloidSession):
            show_paraboloid(session, console, width, height)
            drawn += 1
        elif session.trajectory is None:
            print(
                f"bslab: warning: {path}: no trajectory sketch ({why_no_sketch(session)})",
                file=sys.stderr,
            )
        else:
            trained.append(session)
    if trained:
        show_trajectories(trained, console, width, height or TRAJECTORY_HEIGHT)
    if not trained and not drawn:
        raise BadInput(
            "none of these sessions has a sketch", source=", ".join(map(str, args.paths))
        )
    return 0
