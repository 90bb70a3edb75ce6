"""The ``bslab`` command: the app, headless sweeps, and the small tools around sessions.

Exit codes: 0 success, 1 a failed run or a file that cannot be written, 2 bad input (named file
and field), 130 Ctrl+C, 143 SIGTERM, 129 SIGHUP (see tui_lab.run.signals).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tui_lab import __version__
from tui_lab.cli import COMMANDS, command_parser
from tui_lab.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, BadInput, StorageFault
from tui_lab.run.signals import Terminated, skip_final_collection, termination_raises
from tui_lab.schema import ParaboloidPreset, RayExecutorSettings
from tui_lab.settings import SESSIONS_DIR


def main_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        prog="bslab",
        description="A terminal lab for seeing how batch size and optimizer change training.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands (each takes --help):\n"
        + "\n".join(f"  bslab {name:12} {text}" for name, text in COMMANDS.items()),
    )
    parser.add_argument("preset", nargs="?", type=Path, help="preset JSON file to load")
    parser.add_argument("--headless", action="store_true", help="run the preset without a UI")
    parser.add_argument("--run", action="store_true", help="in the app, start the preset at once")
    parser.add_argument(
        "--out", type=Path, default=SESSIONS_DIR, help="session folder (./sessions)"
    )
    parser.add_argument("--device", help="override the preset's device: auto, cpu, cuda[:N], mps")
    parser.add_argument("--data-dir", type=Path, help="folder with local dataset files")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="train the runs on a Ray cluster at ADDRESS (HOST:PORT, or auto); "
        "without ADDRESS on a local Ray (needs pip install 'tui_lab[ray]')",
    )
    parser.add_argument(
        "--parallel",
        type=parallel_runs,
        help="runs trained at once, each in its own process: N or auto (the preset's, "
        "by default auto: fill the machine)",
    )
    parser.add_argument("--version", action="version", version=f"bslab {__version__}")
    return parser


def parallel_runs(text: str) -> int | str:
    """``--parallel``: a positive whole number or ``auto``."""
    if text == "auto":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a positive number or auto, not {text!r}")


def cmd_main(args: argparse.Namespace) -> int:
    from tui_lab.core.storage import load_preset

    preset = load_preset(args.preset) if args.preset else None
    if args.headless:
        if preset is None:
            raise BadInput("--headless needs a preset file: bslab --headless PRESET.json")
        if isinstance(preset, ParaboloidPreset):
            from rich.console import Console

            from tui_lab.cli.headless import run_paraboloid_headless
            from tui_lab.core.storage import ensure_writable_dir

            return run_paraboloid_headless(preset, ensure_writable_dir(args.out), Console())
        from tui_lab.cli.headless import run_headless
        from tui_lab.run.ray_executor import disconnect
        from tui_lab.run.sweep import prepare_sweep

        try:
            prepared = prepare_sweep(
                preset,
                out_dir=args.out,
                device=args.device,
                data_dir=args.data_dir,
                executor=ray_settings(args.ray),
                parallel=args.parallel,
                source=str(args.preset),
            )
            return run_headless(prepared)
        finally:
            disconnect()  # a local Ray started for this sweep ends with it
    from tui_lab.app.app import run_app

    return run_app(
        preset=preset,
        preset_path=args.preset,
        start=args.run,
        out_dir=args.out,
        device=args.device,
        data_dir=args.data_dir,
    )


def ray_settings(address: str | None) -> RayExecutorSettings | None:
    """``--ray [ADDRESS]`` as executor settings (None: the flag was not given)."""
    if address is None:
        return None
    return RayExecutorSettings(kind="ray", address=address or None)


def dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(f"tui_lab.cli.{argv[0].replace('-', '_')}")
        return module.main(argv[1:])
    parser = main_parser()
    if argv and is_a_word(argv[0]):
        parser.error(unknown_command(argv[0]))  # exits 2
    return cmd_main(parser.parse_args(argv))


def is_a_word(arg: str) -> bool:
    """A first argument that can only be meant as a command: not a flag, not a file that is
    there, and not shaped like a path (``bslab nope.json`` is a missing preset, not a typo)."""
    path = Path(arg)
    return not arg.startswith("-") and not path.suffix and path.name == arg and not path.exists()


def unknown_command(word: str) -> str:
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    if close:
        return f"unknown command {word!r}; did you mean {close[0]!r}?"
    return f"unknown command {word!r}; bslab --help lists the commands"


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    skip_final_collection()
    try:
        with termination_raises():
            return dispatch(argv)
    except BadInput as error:
        print(f"bslab: error: {error.describe()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StorageFault as error:
        print(f"bslab: error: {error.describe()}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # the reader of the output left (``bslab compare … | head``)
        silence_stdout()
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated as stop:
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())
