"""``bslab compare``: the batch-size experiment's table for saved sessions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tui_lab.errors import BadInput


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bslab compare", description="Compare sessions: the batch-size experiment's table."
    )
    parser.add_argument("paths", nargs="+", type=Path, help="session files or folders of them")
    parser.add_argument("--sort", choices=["batch", "time", "target", "accuracy"], default="batch")
    parser.add_argument("--tui", action="store_true", help="open the compare screen of the app")
    args = parser.parse_args(argv)
    from tui_lab.compare import comparison_rows, comparison_table
    from tui_lab.storage import load_sessions

    if args.tui:
        from tui_lab.app.app import run_app

        return run_app(compare_paths=args.paths)
    loaded, warnings = load_sessions(args.paths)
    console = Console()
    for warning in warnings:
        print(f"bslab: warning: {warning}", file=sys.stderr)
    if not loaded:
        raise BadInput("no session files found", source=", ".join(map(str, args.paths)))
    console.print(comparison_table(comparison_rows([s.session for s in loaded], args.sort)))
    return 0
