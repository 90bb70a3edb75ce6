"""Real signals sent to a real ``bslab --headless``: Ctrl+C, ``kill``, an SSH hang-up.

Each saves the run in progress as interrupted and exits with 128 + the signal's number.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
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
    screen = threading.Thread(target=drain, args=(master,), daemon=True)  # the app must not block
    screen.start()
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
    assert code == (143 if signum == signal.SIGTERM else -signal.SIGKILL)
    session = load_session(next(out.glob("*.json")))
    assert session.status == "interrupted"


def drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


@pytest.mark.parametrize(
    "how",
    [
        "SIGHUP",
        pytest.param(
            "closed terminal",
            marks=pytest.mark.xfail(
                reason="a closed pty without SIGHUP still ends with exit 1 or hangs on a busy "
                "machine (issue 21, open)",
                strict=False,
            ),
        ),
    ],
)
def test_the_app_ends_when_its_terminal_goes_away(tmp_path, tiny_preset, how):
    """An SSH connection that drops: the app gets SIGHUP, or only finds its pty closed. Either
    way, within seconds, it saves the run (500 epochs: it cannot end first) as interrupted,
    exits 129 and leaves no training process behind. Without the fix a closed pty left the app
    reading end-of-file for ever, or blocked on its dead output thread."""
    out = tmp_path / "s"
    app, master = app_on_a_pty(long_preset(tiny_preset, tmp_path), out, rows=24, columns=80)
    screen = threading.Thread(target=drain, args=(master,), daemon=True)
    screen.start()
    try:
        child = wait_for_an_epoch(out).pid
        gone = time.monotonic()
        if how == "SIGHUP":
            app.send_signal(signal.SIGHUP)
        else:
            os.close(master)
        code = app.wait(timeout=60)
        app_took = time.monotonic() - gone
        deadline = time.monotonic() + 30
        while child is not None and not process_gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        took = time.monotonic() - gone
    finally:
        if app.poll() is None:
            app.kill()
        with contextlib.suppress(OSError):
            os.close(master)
    assert code == 129
    assert child is not None and process_gone(child)
    print(f"{how}: app gone {app_took:.1f} s, every process {took:.1f} s after")
    # Measured 7-10 s with the load average at 7-10 on 2 shared cores: a margin for that.
    assert took < 20
    session = load_session(next(out.glob("*.json")))
    assert session.status == "interrupted"
