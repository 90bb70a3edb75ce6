"""``bslab devices``: the compute devices this machine offers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="bslab devices", description="List compute devices.").parse_args(
        argv
    )
    from tui_lab.core.devices import available_devices

    for info in available_devices():
        print(f"{info.name:8} {info.description}")
    return 0
