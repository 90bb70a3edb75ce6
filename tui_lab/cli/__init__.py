"""Subcommands of ``bslab``: one module each, with ``main(argv) -> exit code``.

``bslab NAME ...`` imports ``tui_lab.cli.NAME`` (dashes become underscores) on demand, so
the main command starts without loading what it does not use.
"""

import argparse
from typing import Any

COMMANDS = {
    "compare": "compare sessions: the batch-size experiment's table",
    "watch": "follow a sweep another process writes into a folder, live (read-only)",
    "serve": "serve the app to a web browser (localhost; reach it through an SSH tunnel)",
    "schema": "print the JSON Schema of presets or sessions",
    "devices": "list the compute devices",
    "find-batch": "largest batch that fits in memory, and throughput per size",
    "lr-find": "learning-rate range test for each batch size of a preset",
    "paraboloid": "run the paraboloid lab and print the optimizers' paths",
    "sketch": "print the saved sketches of sessions side by side",
    "interpolate": "loss and accuracy on the line between two sessions' final weights",
    "screenshots": "train a short sweep in the app and save a picture of each screen",
}


def command_parser(**options: Any) -> argparse.ArgumentParser:
    """Every bslab parser: it takes only what it is given, so ``--headles`` is an error, not
    ``--headless`` (argparse would otherwise accept any unambiguous prefix of a long option)."""
    return argparse.ArgumentParser(allow_abbrev=False, **options)
