"""Real signals sent to a real ``bslab --headless``: Ctrl+C, ``kill``, an SSH hang-up.

Each saves the run in progress as interrupted and exits with 128 + the signal's number.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from factories import as_at_a_terminal

from tui_lab.core.storage import load_session
from tui_lab.run.signals import is_terminal
from tui_lab.schema import Session, TrainPreset
from tui_lab.schema.train import MAX_EPOCHS

ENV = {**os.environ, "BSLAB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def long_preset(tiny_preset: TrainPreset, tmp_path: Path) -> Path:
    """A run that cannot end before the test signals it (once it has saved an epoch)."""
    long = tiny_preset.updated(epochs=MAX_EPOCHS, batch_sizes=[1])
    path = tmp_path / "p.json"
    path.write_text(long.model_dump_json())
    return path


def wait_for_an_epoch(out: Path) -> Session:
    """The first session in ``out`` once it holds a finished epoch."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        files = list(out.glob("*.json"))
        if files and (session := load_session(files[0])).epochs:
            return session
        time.sleep(0.2)
    pytest.fail("no epoch saved in 90 s")


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [
        (signal.SIGINT, 130, "Ctrl+C"),
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
)
def test_a_signal_saves_the_run_as_interrupted_and_exits_128_plus_its_number(
    tmp_path, tiny_preset, signum, code, name
):
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "tui_lab", "--headless", str(long_preset(tiny_preset, tmp_path))]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=as_at_a_terminal,
    )
    try:
        wait_for_an_epoch(out)
    finally:
        proc.send_signal(signum)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == code, output
    assert f"Stopped by {name}" in output and "Traceback" not in output
    session = load_session(next(out.glob("*.json")))
    assert session.status == "interrupted"
    assert len(session.epochs) >= 1
    assert not list(out.glob(".*.tmp"))


def process_gone(pid: int) -> bool:
    """No such process, or a zombie (nothing left running; in a container nobody may reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def app_on_a_pty(preset: Path, out: Path, rows: int, columns: int) -> tuple[subprocess.Popen, int]:
    """The app training ``preset`` as at a real terminal of that size; returns it and the pty's
    master end (the test reads it, or closes it to hang the terminal up)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    app = subprocess.Popen(
        [sys.executable, "-m", "tui_lab", str(preset), "--run", "--out", str(out)],
        env={**ENV, "TERM": "xterm-256color"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=as_at_a_terminal,
    )
    os.close(slave)
    return app, master


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_the_apps_training_process_never_outlives_the_app(tmp_path, tiny_preset, signum):
    """SIGTERM: the app saves the run as interrupted and exits 143. SIGKILL gives the app no
    say: its training process notices on its own, saves the run and ends."""
    out = tmp_path / "s"
    app, master = app_on_a_pty(long_preset(tiny_preset, tmp_path), out, rows=40, columns=120)
    screen = Screen(master)
    try:
        session = wait_for_an_epoch(out)
        child = session.pid
        assert child is not None and child != app.pid  # trained in the app's child process
        app.send_signal(signum)
        code = app.wait(timeout=60)
        deadline = time.monotonic() + 60
        while not process_gone(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process_gone(child)
    finally:
        if app.poll() is None:
            app.kill()
        screen.close()
    assert code == (143 if signum == signal.SIGTERM else -signal.SIGKILL)
    session = load_session(next(out.glob("*.json")))
    assert session.status == "interrupted"


class Screen:
    """Reads the app's output off the pty's master end, so that the app never blocks on a full
    terminal; ``hang_up`` closes the master the way sshd does when a connection drops."""

    def __init__(self, master: int) -> None:
        self.master = master
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if ready and not os.read(self.master, 65536):
                    return

    def hang_up(self) -> None:
        """Close the master. Not under a blocked ``read``: that would hold the pty open until
        the app next wrote, so the reader stops first."""
        self._stop.set()
        self._reader.join()
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.close(self.master)


@pytest.mark.parametrize("how", ["SIGHUP", "closed terminal"])
def test_the_app_ends_when_its_terminal_goes_away(tmp_path, tiny_preset, how):
    """An SSH connection that drops: the app gets SIGHUP, or only finds its pty closed. Either
    way, within seconds, it saves the run (500 epochs: it cannot end first) as interrupted,
    exits 129 and leaves no training process behind. Without the fix a closed pty left the app
    reading end-of-file for ever, or blocked on its dead output thread, or failed (exit 1)
    printing what it saved to the dead terminal."""
    out = tmp_path / "s"
    app, master = app_on_a_pty(long_preset(tiny_preset, tmp_path), out, rows=24, columns=80)
    screen = Screen(master)
    try:
        child = wait_for_an_epoch(out).pid
        gone = time.monotonic()
        if how == "SIGHUP":
            app.send_signal(signal.SIGHUP)
        else:
            screen.hang_up()
        code = app.wait(timeout=60)
        app_took = time.monotonic() - gone
        deadline = time.monotonic() + 30
        while child is not None and not process_gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        took = time.monotonic() - gone
    finally:
        if app.poll() is None:
            app.kill()
        screen.close()
    assert code == 129
    assert child is not None and process_gone(child)
    print(f"{how}: app gone {app_took:.1f} s, every process {took:.1f} s after")
    # Measured 1.6-5 s with the load average at 6-13 on 2 shared cores (issue 21 asks for 5 s
    # on a quiet machine): a margin for a busier one.
    assert took < 20
    session = load_session(next(out.glob("*.json")))
    assert session.status == "interrupted"


def test_a_hung_up_terminal_is_still_a_terminal_for_detaching():
    """Once its pty's master has closed, ``os.isatty`` says no for the slave: output to it must
    still be sent to /dev/null (else printing what was saved fails: exit 1), a pipe's must not."""
    master, slave = pty.openpty()
    os.close(master)
    read_end, write_end = os.pipe()
    try:
        assert not os.isatty(slave)
        assert is_terminal(slave)
        assert not is_terminal(write_end)
    finally:
        for fd in (slave, read_end, write_end):
            os.close(fd)
