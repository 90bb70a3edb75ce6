"""``bslab schema``: JSON Schema of presets and sessions, for editors and scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tui_lab.cli import command_parser


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        prog="bslab schema",
        description="Print the JSON Schema of presets or sessions (for editors).",
    )
    parser.add_argument("which", choices=["preset", "session"], nargs="?", default="preset")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    from pydantic import TypeAdapter

    from tui_lab.core.storage import write_text_atomic
    from tui_lab.schema import Preset, Session

    model = Preset if args.which == "preset" else Session
    text = json.dumps(TypeAdapter(model).json_schema(), indent=2) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
