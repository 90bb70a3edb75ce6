"""``bslab serve [APP ARGS]``: the app in a web browser, through textual-serve.

Each browser tab gets its own ``bslab APP ARGS`` process. It listens on localhost only unless
told otherwise: from another machine, reach it through an SSH tunnel
(``ssh -L 8000:127.0.0.1:8000 gpu-box``). Whoever reaches the port drives the lab (starts
training, reads and writes files as this user) with no password, so binding any other address
says so loudly.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import socket
import sys
from collections.abc import Sequence

from tui_lab.cli import COMMANDS, command_parser
from tui_lab.errors import BadInput

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
WARNING: bslab serve listens on {host}:{port}, beyond this machine's loopback.
Anyone who can reach that address drives the lab as you, with no password:
starts training, reads and writes files. Prefer the default (127.0.0.1) and an
SSH tunnel:  ssh -L {port}:127.0.0.1:{port} THIS-MACHINE
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def serve_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        prog="bslab serve",
        description="Serve the bslab app to a web browser (textual-serve). Each browser tab "
        "runs `bslab APP ARGS`: a preset and the app's flags, or `watch DIR`.",
        epilog="serve's own options come first; put -- before APP ARGS that start with a dash "
        "(bslab serve --port 8001 -- --out runs). From another machine: "
        "ssh -L 8000:127.0.0.1:8000 THIS-MACHINE, then open http://127.0.0.1:8000",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (8000)")
    parser.add_argument(
        "--public-url",
        help="the address browsers use, if not http://HOST:PORT (behind a proxy or tunnel)",
    )
    parser.add_argument("app_args", nargs=argparse.REMAINDER, help="arguments of the app")
    return parser


def is_loopback(host: str) -> bool:
    """Only this machine can connect: localhost or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_app_args(app_args: list[str]) -> None:
    """Bad app arguments fail here, now, not in each browser tab (argparse exits 2)."""
    if app_args and app_args[0] in COMMANDS:
        return  # a subcommand checks its own arguments when the tab starts it
    from tui_lab.cli.main import main_parser

    args = main_parser().parse_args(app_args)
    if args.headless:
        raise BadInput(
            "the browser shows the app: --headless has no place here", field="--headless"
        )
    if args.preset is not None:
        from tui_lab.core.storage import load_preset

        load_preset(args.preset)


def check_port_free(host: str, port: int) -> None:
    """Say now, naming the flag, if the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as error:
        raise BadInput(
            f"cannot listen on {host}:{port}: {error.strerror or error}", field="--port"
        ) from None


def main(argv: Sequence[str]) -> int:
    args = serve_parser().parse_args(argv)
    app_args = args.app_args[1:] if args.app_args[:1] == ["--"] else args.app_args
    if not 0 < args.port < 65536:
        raise BadInput(f"{args.port} is not a port (1 to 65535)", field="--port")
    check_app_args(app_args)
    check_port_free(args.host, args.port)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise BadInput("needs textual-serve: pip install 'tui_lab[serve]'", field="serve") from None
    if not is_loopback(args.host):
        print(WARNING.format(host=args.host, port=args.port), file=sys.stderr, flush=True)
    command = shlex.join([sys.executable, "-m", "tui_lab.cli.main", *app_args])
    server = Server(
        command, host=args.host, port=args.port, title="bslab", public_url=args.public_url
    )
    server.serve()
    return 0
