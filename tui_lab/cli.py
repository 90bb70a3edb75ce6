"""The ``bslab`` command: the app, headless sweeps, and the small tools around sessions.

Exit codes: 0 success, 1 anything unexpected, 2 bad input (named file and field), 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from tui_lab import __version__
from tui_lab.errors import BadInput

EXIT_BAD_INPUT = 2
DEFAULT_OUT = Path("sessions")


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bslab",
        description="A terminal lab for seeing how batch size and optimizer change training.",
        epilog="Other commands: "
        + ", ".join(f"bslab {name}" for name in COMMANDS)
        + " (each takes --help).",
    )
    parser.add_argument("preset", nargs="?", type=Path, help="preset JSON file to load")
    parser.add_argument("--headless", action="store_true", help="run the preset without a UI")
    parser.add_argument("--run", action="store_true", help="in the app, start the preset at once")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="session folder (./sessions)")
    parser.add_argument("--device", help="override the preset's device: auto, cpu, cuda[:N], mps")
    parser.add_argument("--data-dir", type=Path, help="folder with local dataset files")
    parser.add_argument("--version", action="version", version=f"bslab {__version__}")
    return parser


def cmd_main(args: argparse.Namespace) -> int:
    from tui_lab.storage import load_preset

    preset = load_preset(args.preset) if args.preset else None
    if args.headless:
        if preset is None:
            raise BadInput("--headless needs a preset file: bslab --headless PRESET.json")
        from tui_lab.headless import run_headless
        from tui_lab.sweep import prepare_sweep

        prepared = prepare_sweep(
            preset,
            out_dir=args.out,
            device=args.device,
            data_dir=args.data_dir,
            source=str(args.preset),
        )
        return run_headless(prepared)
    from tui_lab.app.app import run_app

    return run_app(
        preset=preset,
        preset_path=args.preset,
        start=args.run,
        out_dir=args.out,
        device=args.device,
        data_dir=args.data_dir,
    )


def cmd_compare(argv: Sequence[str]) -> int:
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


def cmd_schema(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bslab schema",
        description="Print the JSON Schema of presets or sessions (for editors).",
    )
    parser.add_argument("which", choices=["preset", "session"], nargs="?", default="preset")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    from pydantic import TypeAdapter

    from tui_lab.schema import Preset, Session
    from tui_lab.storage import write_text_atomic

    model = Preset if args.which == "preset" else Session
    text = json.dumps(TypeAdapter(model).json_schema(), indent=2) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_devices(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="bslab devices", description="List compute devices.").parse_args(
        argv
    )
    from tui_lab.devices import available_devices

    for info in available_devices():
        print(f"{info.name:8} {info.description}")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "compare": cmd_compare,
    "schema": cmd_schema,
    "devices": cmd_devices,
}


def dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return cmd_main(main_parser().parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(argv)
    except BadInput as error:
        print(f"bslab: error: {error.describe()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
