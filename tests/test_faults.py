"""Faults in the middle of a sweep: a full disk, a removed or read-only folder, a killed run.

A fault that will hit every later run (nothing can be saved in that folder) stops the sweep:
exit code 1, one message naming the file, the run marked failed where that can be written,
no traceback and no temporary file left behind. Runs saved before are kept.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from factories import session_from_accuracies

import tui_lab.cli.headless
from tui_lab.cli.main import main
from tui_lab.core import storage
from tui_lab.core.storage import (
    ensure_writable_dir,
    load_session,
    process_alive,
    remove_stale_temporaries,
    settle_status,
    write_text_atomic,
)
from tui_lab.run import recorder
from tui_lab.run.events import EpochEnded, Event, SessionSaved, StepStats
from tui_lab.run.sweep import prepare_sweep, run_sweep


class FaultyDisk:
    """The ``os`` module as the writer sees it, except for the files that ``fault(path)`` picks:
    creating them fails with ``on_open``, or writing them fails half-way with ``on_write``."""

    def __init__(
        self,
        fault: Callable[[str], bool],
        *,
        on_open: int | None = None,
        on_write: int | None = None,
    ):
        self.fault, self.on_open, self.on_write = fault, on_open, on_write
        self.doomed: set[int] = set()

    def __getattr__(self, name: str):
        return getattr(os, name)

    def open(self, path, flags, mode=0o777):
        if self.on_open and self.fault(str(path)):
            raise OSError(self.on_open, os.strerror(self.on_open), str(path))
        fd = os.open(path, flags, mode)
        if self.on_write and self.fault(str(path)):
            self.doomed.add(fd)
        return fd

    def fdopen(self, fd, *args):
        file = os.fdopen(fd, *args)
        if fd in self.doomed:
            self.doomed.discard(fd)  # the number is reused by the next file opened
            real_write, error = file.write, self.on_write

            def write(data: bytes) -> int:
                real_write(data[: len(data) // 2])
                raise OSError(error, os.strerror(error))

            file.write = write
        return file


def run_headless_cli(capsys, preset, out: Path) -> tuple[int, str]:
    path = out.parent / "p.json"
    path.write_text(preset.model_dump_json())
    code = main(["--headless", str(path), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_stopped_cleanly(code: int, output: str, out: Path, reason: str) -> None:
    assert code == 1, output
    assert "cannot save" in output and reason in output and "sweep stopped" in output
    assert "Traceback" not in output
    assert not list(out.glob(".*.tmp"))


def test_disk_full_while_saving_weights_marks_the_run_failed_and_stops(
    tmp_path, tiny_preset, capsys, monkeypatch
):
    disk = FaultyDisk(lambda path: ".safetensors" in path, on_write=errno.ENOSPC)
    monkeypatch.setattr(storage, "os", disk)
    out = tmp_path / "s"
    code, output = run_headless_cli(capsys, tiny_preset, out)
    assert_stopped_cleanly(code, output, out, "No space left on device")
    [file] = out.glob("*.json")  # the second run never started
    session = load_session(file)
    assert session.status == "failed" and "No space left on device" in session.message
    assert session.weights_file is None
    assert not list(out.glob("*.safetensors"))


def test_disk_full_mid_run_keeps_the_last_good_save(tmp_path, tiny_preset, capsys, monkeypatch):
    saves = []
    monkeypatch.setattr(recorder, "LIVE_SAVE_SECONDS", 3600.0)  # saves at start and each epoch

    def full_after_two_saves(path: str) -> bool:
        if path.endswith(".tmp") and ".sweep." not in path:  # a session's save, not the plan's
            saves.append(path)
        return len(saves) > 2

    monkeypatch.setattr(storage, "os", FaultyDisk(full_after_two_saves, on_write=errno.ENOSPC))
    out = tmp_path / "s"
    code, output = run_headless_cli(capsys, tiny_preset.updated(epochs=5), out)
    assert_stopped_cleanly(code, output, out, "No space left on device")
    [file] = out.glob("*.json")
    session = load_session(file)  # still valid: the save that failed never replaced it
    assert len(session.epochs) == 1


def test_a_read_only_folder_mid_run_stops_the_sweep(tmp_path, tiny_preset, capsys, monkeypatch):
    out = tmp_path / "s"
    after_first_epoch = {"on": False}
    disk = FaultyDisk(lambda path: after_first_epoch["on"], on_open=errno.EROFS)
    monkeypatch.setattr(storage, "os", disk)
    when_an_epoch_ends(monkeypatch, lambda: after_first_epoch.update(on=True))
    code, output = run_headless_cli(capsys, tiny_preset, out)
    assert_stopped_cleanly(code, output, out, "Read-only file system")


def test_a_removed_folder_mid_run_stops_the_sweep(tmp_path, tiny_preset, capsys, monkeypatch):
    out = tmp_path / "s"
    when_an_epoch_ends(monkeypatch, lambda: shutil.rmtree(out))
    code, output = run_headless_cli(capsys, tiny_preset, out)
    assert code == 1 and "No such file or directory" in output and "Traceback" not in output


def when_an_epoch_ends(monkeypatch, action: Callable[[], None]) -> None:
    """Run ``action`` once, when the headless runner sees the first epoch end."""
    real = tui_lab.cli.headless.run_sweep

    def sweep(*args, **kwargs) -> Iterator[Event]:
        done = False
        for event in real(*args, **kwargs):
            yield event
            if isinstance(event, EpochEnded) and not done:
                done = True
                action()

    monkeypatch.setattr(tui_lab.cli.headless, "run_sweep", sweep)


def test_a_run_left_running_by_a_dead_process_reads_back_as_stopped():
    session = session_from_accuracies(32, [0.5], seconds=1.0).model_copy(
        update={"status": "running", "pid": os.getpid(), "heartbeat": datetime.now(timezone.utc)}
    )
    session.environment = session.environment.model_copy(update={"host": socket.gethostname()})
    assert settle_status(session.model_copy()).status == "running"  # this process: alive
    dead = 2**22 + 1  # above Linux's pid limit by default: no such process
    assert settle_status(session.model_copy(update={"pid": dead})).status == "stopped"
    silent = session.heartbeat - timedelta(minutes=10)  # on another host, or hung
    stale = session.model_copy(update={"heartbeat": silent})
    assert settle_status(stale).status == "stopped"


def test_files_are_written_with_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / ".a.json.4194305-0123abcd.tmp"  # pid 2^22 + 1: no such process
    mine = tmp_path / f".b.json.{os.getpid()}-0123abcd.tmp"  # a write in progress
    fresh = tmp_path / ".c.json.4194305-89abcdef.tmp"
    other = tmp_path / ".notes.tmp"  # not one of bslab's
    for path in (dead, mine, fresh, other):
        path.write_text("x")
    an_hour_ago = datetime.now().timestamp() - 3600
    for path in (dead, mine, other):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert mine.exists() and fresh.exists() and other.exists()


def test_temporary_names_bslab_did_not_write_are_left_alone_and_crash_nothing(tmp_path):
    """A crafted name (a pid past any platform's, thousands of digits) or a folder named like
    a temporary file: a later sweep into the folder neither crashes nor removes it."""
    huge = tmp_path / f".a.json.{2**70}-0123abcd.tmp"  # os.kill would overflow
    digits = tmp_path / f".b.json.{'9' * 230}-0123abcd.tmp"  # as long as a file name can be
    folder = tmp_path / ".c.json.4194305-0123abcd.tmp"  # pid of no process, but a folder
    out_of_range = tmp_path / ".d.json.4294967297-0123abcd.tmp"  # 10 digits, past pid_t
    for path in (huge, digits, out_of_range):
        path.write_text("x")
    folder.mkdir()
    an_hour_ago = datetime.now().timestamp() - 3600
    for path in (huge, digits, folder, out_of_range):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert ensure_writable_dir(tmp_path) == tmp_path
    assert remove_stale_temporaries(tmp_path) == []  # the 10-digit one went at once
    assert huge.exists() and digits.exists() and folder.is_dir() and not out_of_range.exists()


def test_a_pid_no_platform_has_is_no_process():
    assert not process_alive(2**70)
    assert not process_alive(2**40)
    assert process_alive(os.getpid())


def test_a_running_run_saves_a_heartbeat_between_epochs(tmp_path, tiny_preset, monkeypatch):
    """Long epochs must not look dead: the file is saved at least every HEARTBEAT_SECONDS."""
    monkeypatch.setattr(recorder, "HEARTBEAT_SECONDS", 0.0)
    events = list(run_sweep(prepare_sweep(tiny_preset.updated(epochs=1), out_dir=tmp_path)))
    after_steps = [
        b
        for a, b in itertools.pairwise(events)
        if isinstance(a, StepStats) and isinstance(b, SessionSaved)
    ]
    assert after_steps and all(s.session.heartbeat is not None for s in after_steps)
    assert all(s.session.pid == os.getpid() for s in after_steps)
