"""``bslab devices``: the compute devices this machine offers."""

from __future__ import annotations

from collections.abc import Sequence

from tui_lab.cli import command_parser


def main(argv: Sequence[str]) -> int:
    command_parser(prog="bslab devices", description="List compute devices.").parse_args(argv)
    from tui_lab.core.devices import available_devices

    for info in available_devices():
        print(f"{info.name:8} {info.description}")
    return 0
