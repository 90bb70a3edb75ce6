"""SIGTERM and SIGHUP end bslab the way Ctrl+C does: the run in progress is saved as interrupted.

An SSH disconnect (SIGHUP), ``kill`` or a batch scheduler's time limit (SIGTERM) would otherwise
end the process on the spot and leave its run marked ``running`` for ever. Exit codes follow
the shell's convention, 128 + the signal's number: 129 for SIGHUP, 143 for SIGTERM (and 130 for
Ctrl+C). A signal that is ignored when bslab starts (``nohup``) stays ignored.

Each process also ends without its interpreter's last garbage collection (see
``skip_final_collection``), so that quitting takes a moment, not seconds per process.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import gc
import os
import signal
import termios
from collections.abc import Callable, Iterator
from types import FrameType

TERMINATING = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM or SIGHUP; a BaseException, like KeyboardInterrupt,
    so that no ``except Exception`` on the way mistakes it for a failed run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"terminated by {self.name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def is_terminal(fd: int) -> bool:
    """``fd`` is a terminal, hung up or not: ``os.isatty`` says no once the terminal has gone
    away (its ioctls then fail with EIO; a file or pipe answers ENOTTY)."""
    try:
        termios.tcgetattr(fd)
    except termios.error as error:
        return error.args[0] == errno.EIO
    return True


@functools.cache
def skip_final_collection() -> None:
    """Exit without the interpreter's last garbage collection. With torch loaded it walks
    hundreds of thousands of objects: 1.5-2.5 s on a busy machine, in each process of the app
    in turn, while the user waits for quit. Frozen at exit, they go with the process instead."""
    atexit.register(gc.freeze)


def detach_from_hung_up_terminal() -> None:
    """After a hang-up, writes to the terminal fail: send what is left to /dev/null instead
    (output redirected to a file stays where it goes)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        if is_terminal(fd):
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
    os.close(devnull)


def on_termination(callback: Callable[[int], None]) -> dict[int, object]:
    """Call ``callback(signum)`` on SIGTERM and SIGHUP (unless ignored); the previous handlers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            detach_from_hung_up_terminal()
        callback(signum)

    previous = {}
    for signum in TERMINATING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    return previous


@contextlib.contextmanager
def termination_raises() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise Terminated in the main thread; once raised, later ones
    are ignored so that saving the interrupted run is not cut short itself."""

    def raise_terminated(signum: int) -> None:
        for other in TERMINATING:
            signal.signal(other, signal.SIG_IGN)
        raise Terminated(signum)

    previous = on_termination(raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
