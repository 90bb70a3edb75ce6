"""``bslab watch [DIR]``: follow a sweep that another process writes into DIR, live, read-only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tui_lab.cli import command_parser
from tui_lab.errors import BadInput
from tui_lab.settings import SESSIONS_DIR


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab watch",
        description="Watch the sweep that another process (a headless run, the app, a Ray "
        "cluster) writes into a sessions folder: its runs as they start, their live curves, "
        "the sweep's progress; F4 compares every run there. Never writes to the folder.",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, default=SESSIONS_DIR, help="sessions folder (./sessions)"
    )
    args = parser.parse_args(argv)
    folder: Path = args.folder
    if not folder.is_dir():
        raise BadInput("not a folder" if folder.exists() else "folder not found", source=folder)
    if not os.access(folder, os.R_OK | os.X_OK):
        raise BadInput("cannot read this folder (permission denied)", source=folder)
    from tui_lab.app.watch import WatchApp

    result = WatchApp(folder).run()
    return result if isinstance(result, int) else 0
