"""Reading and writing presets and sessions: atomic writes, and errors that name file and field."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from tui_lab.errors import BadInput, StorageFault, from_validation_error
from tui_lab.schema import (
    PRESET_ADAPTER,
    SCHEMA_VERSION,
    SESSION_ADAPTER,
    ParaboloidPreset,
    ParaboloidSession,
    Session,
    TrainPreset,
)
from tui_lab.schema.plan import SweepPlan

SESSION_GLOB = "*.json"
PLAN_ADAPTER = TypeAdapter(SweepPlan)
TMP_SUFFIX = ".tmp"
TMP_NAME = re.compile(r"\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp")
STALE_TMP_SECONDS = 60.0
# A running run saves at least every HEARTBEAT_SECONDS; five missed heartbeats mean it is dead.
HEARTBEAT_SECONDS = 60.0
STALE_SECONDS = 5 * HEARTBEAT_SECONDS
MAX_PRESET_BYTES = 2**20  # a hand-written preset is a few hundred bytes
MAX_SESSION_BYTES = 64 * 2**20  # sessions are bounded well below this (bounded curves)
ABANDONED_TMP_SECONDS = 24 * 3600.0
T = TypeVar("T")


def temporary_path(path: Path) -> Path:
    """Where ``path`` is written before its rename: hidden, beside it, named after the writer.

    The writer's pid in the name tells a stale file (its writer is gone) from one being written.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and a rename: readers never see half a file.

    Any failure to write is a StorageFault naming the file, and the temporary file is removed.
    The file is created with mode 0666 less the umask, as other tools do (``mkstemp`` would
    make it 0600, unreadable to a colleague on a shared machine).
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:  # the folder is gone, read-only, or the name is impossible
        raise StorageFault(path, error) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError):  # disk full, quota exceeded, folder removed...
            raise StorageFault(path, error) from None
        raise


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Delete temporary files left by killed writers; returns those removed.

    A file goes when its writer's pid is gone here and it is over a minute old (a folder shared
    between machines may hold another host's write in progress), or when it is over a day old.
    """
    now = time.time() if now is None else now
    removed = []
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        match = TMP_NAME.fullmatch(tmp.name)
        try:
            age = now - tmp.stat().st_mtime
        except OSError:
            continue
        if match is None or age < STALE_TMP_SECONDS:
            continue
        if age > ABANDONED_TMP_SECONDS or not process_alive(int(match["pid"])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_model(model: BaseModel, path: Path) -> None:
    write_text_atomic(path, model.model_dump_json(indent=1, exclude_none=False) + "\n")


def read_text(path: Path, max_bytes: int = MAX_SESSION_BYTES) -> str:
    """The file's text; any way it can be unreadable is BadInput naming it."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise BadInput("file not found", source=path) from None
    except IsADirectoryError:
        raise BadInput("is a folder, not a file", source=path) from None
    except OSError as error:
        raise BadInput(f"cannot read: {error.strerror or error}", source=path) from None
    if len(raw) > max_bytes:
        raise BadInput(f"larger than {max_bytes // 2**20} MiB: not a file bslab wrote", source=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(
            f"not UTF-8 text ({error.reason} at byte {error.start})", source=path
        ) from None


def parse_json(text: str, path: Path) -> Any:
    """Python's parser, for its error messages (line and column) and its nesting check."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})", source=path
        ) from None
    except RecursionError:
        raise BadInput("invalid JSON: nested too deeply", source=path) from None


def check_schema_version(data: Any, path: Path) -> None:
    if not isinstance(data, dict):
        raise BadInput("expected a JSON object", source=path)
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise BadInput(
            f"written by a newer bslab (schema_version {version}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade bslab to read it",
            source=path,
            field="schema_version",
        )


def _load(adapter: TypeAdapter[T], path: Path, max_bytes: int) -> T:
    """Validated strictly: ``"epochs": "1"`` or ``true`` for a number is an error, not coerced.

    pydantic parses the text itself, in one pass (``benchmarks/session_loading.py``); only a file
    that fails is parsed again by Python's parser, to say where its JSON is broken.
    """
    text = read_text(path, max_bytes)
    try:
        return adapter.validate_json(text, strict=True)
    except ValidationError as error:
        check_schema_version(parse_json(text, path), path)
        raise from_validation_error(error, path) from None


def load_preset(path: Path) -> TrainPreset | ParaboloidPreset:
    """A training or paraboloid preset (``kind`` tells; a preset without it is a training one)."""
    return _load(PRESET_ADAPTER, path, MAX_PRESET_BYTES)


def load_any_session(path: Path) -> Session | ParaboloidSession:
    """A session of either kind; a run left ``running`` by a dead process is ``stopped``."""
    session = _load(SESSION_ADAPTER, path, MAX_SESSION_BYTES)
    if isinstance(session, Session):
        settle_status(session)
    return session


def run_is_dead(session: Session, now: datetime | None = None) -> bool:
    """Whether a session saved as running can no longer be: its process is gone from this host,
    or it has not saved for longer than STALE_SECONDS (a killed run, or one on another host)."""
    now = now or datetime.now(timezone.utc)
    beat = session.heartbeat or session.created  # written before heartbeats: when it began
    if beat.tzinfo is None:  # a hand-edited time without a zone: bslab writes UTC
        beat = beat.replace(tzinfo=timezone.utc)
    if (now - beat).total_seconds() > STALE_SECONDS:
        return True
    same_host = session.environment.host == socket.gethostname()
    return same_host and session.pid is not None and not process_alive(session.pid)


def settle_status(session: Session, now: datetime | None = None) -> Session:
    """Mark a dead 'running' run as 'stopped' (in memory: readers never rewrite the file)."""
    if session.status == "running" and run_is_dead(session, now):
        session.status = "stopped"
        session.message = "its process ended without saving (killed?)"
    return session


def load_plan(path: Path) -> SweepPlan:
    """A sweep's plan (the runs it will train), as the sweep saved it beside its sessions."""
    return _load(PLAN_ADAPTER, path, MAX_SESSION_BYTES)


def load_session(path: Path) -> Session:
    """A training session; another kind of session is an error naming the file."""
    session = load_any_session(path)
    if not isinstance(session, Session):
        raise BadInput(f"a {session.kind} session, not a training run", source=path, field="kind")
    return session


@dataclass(frozen=True)
class LoadedSession:
    path: Path
    session: Session


def load_sessions(
    paths: list[Path], progress: Callable[[int, int], None] | None = None
) -> tuple[list[LoadedSession], list[str]]:
    """Training sessions from files and folders; ``progress(done, total)`` after each file,
    for a reader of thousands of them that wants to show how far it is.

    Inside folders, broken files become warnings and other kinds of session (paraboloid
    sketches) are passed over silently: a sessions folder holds both.
    """
    files = [
        (file, True) if path.is_dir() else (path, False)
        for path in map(Path, paths)
        for file in (sorted(path.glob(SESSION_GLOB)) if path.is_dir() else [path])
    ]
    loaded, warnings = [], []
    for done, (file, in_folder) in enumerate(files, 1):
        if not in_folder:
            loaded.append(LoadedSession(file, load_session(file)))
        else:
            try:
                session = load_any_session(file)
            except BadInput as error:
                warnings.append(f"skipped {error.describe()}")
                session = None
            if isinstance(session, Session):
                loaded.append(LoadedSession(file, session))
        if progress is not None:
            progress(done, len(files))
    return loaded, warnings


def ensure_writable_dir(path: Path, *, field: str = "--out") -> Path:
    """Create the output folder if needed and prove it is writable before any training starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise BadInput(
            f"cannot write there: {error.strerror or error}", source=path, field=field
        ) from None
    remove_stale_temporaries(path)
    return path


def paraboloid_filename(session: ParaboloidSession) -> str:
    stamp = session.created.strftime("%Y%m%d-%H%M%S")
    return f"{session.preset.name}-{stamp}-{session.id[-6:]}.json".replace(" ", "_")


def save_paraboloid_session(session: ParaboloidSession, out_dir: Path) -> Path:
    """Write the session atomically into ``out_dir`` (created if needed); returns its path."""
    path = ensure_writable_dir(out_dir) / paraboloid_filename(session)
    save_model(session, path)
    return path
