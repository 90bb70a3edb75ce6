"""``bslab compare``: the batch-size experiment's table for saved sessions, and what it says.

Below the tables, for every group of runs that differ only in batch size: the batch size that
is optimal in wall time and the one optimal in final accuracy, and McCandlish's fit of steps to
target. ``--analysis`` adds the charts: steps and samples to target, and the time trade-off.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tui_lab.cli import command_parser
from tui_lab.errors import BadInput, printable
from tui_lab.schema import Session

CHART_HEIGHT = 18
MAX_CHART_WIDTH = 100


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab compare", description="Compare sessions: the batch-size experiment's table."
    )
    parser.add_argument("paths", nargs="+", type=Path, help="session files or folders of them")
    parser.add_argument("--sort", choices=["batch", "time", "target", "accuracy"], default="batch")
    parser.add_argument(
        "--analysis",
        action="store_true",
        help="add charts of steps, samples and time to target against batch size",
    )
    parser.add_argument("--tui", action="store_true", help="open the compare screen of the app")
    parser.add_argument(
        "--format",
        choices=["table", "csv", "json", "markdown"],
        default="table",
        help="table (default, with the verdicts), or one row per run with every summary field",
    )
    args = parser.parse_args(argv)
    from tui_lab.core.storage import load_sessions
    from tui_lab.report.comparison import summary_records
    from tui_lab.report.seeds import sweep_view

    if args.tui:
        from tui_lab.app.app import run_app

        return run_app(compare_paths=args.paths)
    loaded, warnings = load_sessions(args.paths)
    console = Console()
    for warning in warnings:
        print(f"bslab: warning: {warning}", file=sys.stderr)
    if not loaded:
        raise BadInput("no session files found", source=", ".join(map(str, args.paths)))
    sessions = [s.session for s in loaded]
    if args.format != "table":
        write_records(summary_records([(item.path, item.session) for item in loaded]), args.format)
        return 0
    console.print(sweep_view(sessions, args.sort))
    print_analysis(console, sessions, charts=args.analysis)
    return 0


def write_records(records: list[dict[str, object]], form: str) -> None:
    """The records on stdout as CSV, JSON or a Markdown table.

    JSON escapes control characters itself; CSV and Markdown are shown as they are by a
    terminal or a viewer, so there a name's control characters are written as visible escapes.
    """
    if form != "json":
        records = [
            {k: printable(v) if isinstance(v, str) else v for k, v in record.items()}
            for record in records
        ]
    if form == "json":
        sys.stdout.write(json.dumps(records, indent=1) + "\n")  # one write: fast
    elif form == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    else:
        from tui_lab.report.comparison import markdown_table

        sys.stdout.write(markdown_table(records))


def print_statement(console: Console, line: str) -> None:
    """One statement of the analysis (Rich markup, its indent its level), wrapped by words to
    the console's width, its continuation lines two columns further in."""
    from rich.text import Text

    indent = len(line) - len(line.lstrip(" "))
    parts = Text.from_markup(line[indent:]).wrap(console, max(console.width - indent - 2, 20))
    for i, part in enumerate(parts):
        part.rstrip()
        console.print(Text(" " * (indent + 2 * (i > 0))) + part, soft_wrap=True)


def print_analysis(console: Console, sessions: list[Session], *, charts: bool) -> None:
    """Per group of runs at several batch sizes: the optima, the fit and, if asked, charts."""
    from rich.text import Text

    from tui_lab.report.scaling import render_report, scaling_groups
    from tui_lab.report.scaling_text import analysis_lines

    width = min(MAX_CHART_WIDTH, console.width)
    for group in scaling_groups(sessions):
        if len({r.batch_size for r in group.rows}) < 2 and not charts:
            continue
        console.print()
        for line in analysis_lines(group):
            print_statement(console, line)
        if charts:
            for chart in render_report(group, width=width, height=CHART_HEIGHT):
                console.print()
                console.print(Text.from_ansi(chart), soft_wrap=True)
