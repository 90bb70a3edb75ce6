"""The app's terminal can go away under it (an SSH connection drops, a pty closes): notice, and
keep the output thread alive until the app has saved its run and exited.

Textual's output thread dies on the first write to a hung-up terminal, and the app then blocks
for ever on its full output queue; its input thread reads end-of-file in a loop, a core's worth
of CPU. ``HangUpSafeDriver`` keeps writing (into the void), stops reading, and tells the app,
which ends as on SIGHUP (see ``BslabApp.terminated``).
"""

from __future__ import annotations

import contextlib
import select
import threading
from typing import IO, Any

from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

HANG_UP = select.POLLHUP | select.POLLERR | select.POLLNVAL


class TerminalClosed(Message):
    """The terminal went away (its pty closed) without a SIGHUP reaching the app."""


def wait_for_hang_up(fd: int) -> None:
    """Block until the terminal on ``fd`` goes away (poll reports a hang-up whatever it is
    asked to watch, so it is asked for nothing else: pending input does not wake it)."""
    poller = select.poll()
    poller.register(fd, 0)
    while not any(event & HANG_UP for _, event in poller.poll()):
        pass


class TolerantOutput:
    """A text file whose writes and flushes are dropped once the terminal has gone away."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, text: str) -> int:
        try:
            return self._file.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._file.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class HangUpSafeDriver(LinuxDriver):
    """Textual's terminal driver, writing through ``TolerantOutput``; when the terminal goes
    away it stops reading and tells the app (``TerminalClosed``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file = TolerantOutput(self._file)  # type: ignore[assignment]

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if self.input_tty:
            watcher = threading.Thread(target=self._watch, name="bslab-hang-up", daemon=True)
            watcher.start()

    def _watch(self) -> None:
        wait_for_hang_up(self.fileno)
        self.exit_event.set()  # the input thread would read end-of-file in a loop
        self._app.post_message(TerminalClosed())


def hang_up_safe(driver: type[Driver]) -> type[Driver]:
    """The driver to use instead of ``driver``: the safe one where it is Textual's terminal one."""
    return HangUpSafeDriver if driver is LinuxDriver else driver
