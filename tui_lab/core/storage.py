"""Reading and writing presets and sessions: atomic writes, and errors that name file and field."""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import json
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from tui_lab.errors import (
    BadInput,
    StorageFault,
    field_path,
    from_validation_error,
)
from tui_lab.schema import (
    PRESET_ADAPTER,
    SCHEMA_VERSION,
    SESSION_ADAPTER,
    ParaboloidPreset,
    ParaboloidSession,
    Session,
    TrainPreset,
)
from tui_lab.schema.common import SAVED
from tui_lab.schema.plan import SweepPlan
from tui_lab.schema.user import with_base

SESSION_GLOB = "*.json"
PLAN_ADAPTER = TypeAdapter(SweepPlan)
TMP_SUFFIX = ".tmp"
# A pid has at most 10 digits: a longer run of digits is a name bslab did not write.
TMP_NAME = re.compile(r"\..+\.(?P<pid>[1-9]\d{0,9})-[0-9a-f]{8}\.tmp")
STALE_TMP_SECONDS = 60.0
# A running run saves at least every HEARTBEAT_SECONDS; five missed heartbeats mean it is dead.
HEARTBEAT_SECONDS = 60.0
STALE_SECONDS = 5 * HEARTBEAT_SECONDS
MAX_PRESET_BYTES = 2**20  # a hand-written preset is a few hundred bytes
MAX_SESSION_BYTES = 64 * 2**20  # sessions are bounded well below this (bounded curves)
ABANDONED_TMP_SECONDS = 24 * 3600.0
KEY_TOKEN = re.compile(r'"\s*:')  # every key of a JSON text (and any string holding '":')
MAX_INT_DIGITS = 100  # far past any number a schema accepts; Python's own limit is 4,300
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
    """Whether a process with this id runs on this machine (an id outside the platform's range,
    read from a hand-edited file, is no process at all)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
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
            info = tmp.lstat()
        except OSError:
            continue
        age = now - info.st_mtime
        if match is None or not stat.S_ISREG(info.st_mode) or age < STALE_TMP_SECONDS:
            continue  # not a file bslab wrote (a folder, a link, another name), or recent
        if age > ABANDONED_TMP_SECONDS or not process_alive(int(match["pid"])):
            with contextlib.suppress(OSError):  # gone already, or not ours to remove
                tmp.unlink()
                removed.append(tmp)
    return removed


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_model(model: BaseModel, path: Path) -> None:
    write_text_atomic(path, model.model_dump_json(indent=1, exclude_none=False) + "\n")


NOT_REGULAR = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def not_regular(mode: int) -> str | None:
    """What a file of this mode is, if it is anything but a regular file (None: regular)."""
    if stat.S_ISREG(mode):
        return None
    return NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: Path, *, follow_links: bool = True) -> int:
    """A descriptor of ``path`` opened for reading, refused unless it is a regular file (and,
    unless ``follow_links``, refused if it is a symbolic link: it could lead anywhere).

    Opened without blocking, so a named pipe or a device answers at once instead of waiting
    forever for a writer; its kind is then read from the open descriptor (no race with a swap).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BadInput("file not found", source=path) from None
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_links:
            raise BadInput(
                "is a symbolic link: only a file beside the session is read", source=path
            ) from None
        raise BadInput(f"cannot read: {error.strerror or error}", source=path) from None
    kind = not_regular(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise BadInput(f"is {kind}, not a regular file", source=path)
    return fd


def read_bytes(path: Path, max_bytes: int, *, follow_links: bool = True) -> bytes:
    """Up to ``max_bytes + 1`` bytes of a regular file; any way it can be unreadable is
    BadInput naming it."""
    fd = open_regular(path, follow_links=follow_links)
    try:
        with os.fdopen(fd, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as error:
        raise BadInput(f"cannot read: {error.strerror or error}", source=path) from None


def read_text(path: Path, max_bytes: int = MAX_SESSION_BYTES) -> str:
    """The file's text; any way it can be unreadable is BadInput naming it."""
    path = Path(path)
    raw = read_bytes(path, max_bytes)
    if len(raw) > max_bytes:
        raise BadInput(f"larger than {max_bytes // 2**20} MiB: not a file bslab wrote", source=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(
            f"not UTF-8 text ({error.reason} at byte {error.start})", source=path
        ) from None


class Unreadable:
    """What the file gives where no value can be taken from it, marked in place by the
    parser so that its field can be named: a key given twice in one object (which one is
    meant?), or an integer of thousands of digits (Python refuses to convert it, pydantic's
    parser calls it out of range without saying where)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


class DuplicatedKeys(dict[str, Any]):
    """A JSON object that gave a key twice: an Unreadable one."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key
        self.unreadable = Unreadable("given twice in one object: which value is meant?")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        return DuplicatedKeys(pairs, next(key for key, n in counts.items() if n > 1))
    return data


def _int(text: str) -> int | Unreadable:
    if len(text) <= MAX_INT_DIGITS:
        return int(text)
    return Unreadable(f"a number of {len(text.lstrip('-'))} digits, far outside any range")


def find_unreadable(data: Any) -> tuple[tuple[int | str, ...], Unreadable] | None:
    """Where the parser marked the first value it could not take, and why (None: nowhere)."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, Unreadable):
            return loc, value
        if isinstance(value, DuplicatedKeys):
            return (*loc, value.key), value.unreadable
        items = (
            value.items() if isinstance(value, dict) else enumerate(value)
            if isinstance(value, list) else ()
        )  # fmt: skip
        stack.extend(((*loc, key), item) for key, item in reversed(list(items)))
    return None


def parse_json(text: str, path: Path) -> Any:
    """Python's parser, for its error messages (line and column) and its nesting check; a key
    given twice in one object, or a number too long to read, is an error naming its field."""
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_int)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})", source=path
        ) from None
    except RecursionError:
        raise BadInput("invalid JSON: nested too deeply", source=path) from None
    unreadable = find_unreadable(data)
    if unreadable is not None:
        loc, mark = unreadable
        raise BadInput(mark.problem, source=path, field=field_path(loc) or "(top level)")
    return data


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


def keys_read(model: BaseModel) -> int:
    """How many keys of the file pydantic read to build ``model``: every model's given fields
    (the schema has no free-form objects, so every key of a valid file is one of them)."""
    count = len(model.model_fields_set)
    for name in fields_with_models(type(model)):
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            count += keys_read(value)
        elif isinstance(value, list):
            count += sum(keys_read(item) for item in value if isinstance(item, BaseModel))
    return count


@functools.cache
def fields_with_models(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls`` that can hold a model (alone or in a list): the only ones
    ``keys_read`` looks into, so that a curve's numbers are never walked."""

    def holds_model(annotation: Any) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return True
        return any(holds_model(arg) for arg in get_args(annotation))

    return tuple(name for name, f in cls.model_fields.items() if holds_model(f.annotation))


def _load(
    adapter: TypeAdapter[T], path: Path, max_bytes: int, context: dict[str, Any] | None = None
) -> T:
    """Validated strictly: ``"epochs": "1"`` or ``true`` for a number is an error, not coerced.

    pydantic parses the text itself, in one pass (``benchmarks/session_loading.py``). It keeps
    the last of a key given twice; so a file holding more ``"key":`` than pydantic read keys
    (a key twice, or a string that holds ``":``) is read again by Python's parser, which names
    a duplicate. A file that fails is read again too, to say where its JSON is broken and to
    name the fields as the file does.
    """
    text = read_text(path, max_bytes)
    try:
        value = adapter.validate_json(text, strict=True, context=context)
    except ValidationError as error:
        data = parse_json(text, path)
        check_schema_version(data, path)
        raise from_validation_error(error, path, data) from None
    if len(KEY_TOKEN.findall(text)) != keys_read(value):  # type: ignore[arg-type]
        parse_json(text, path)
    return value


def load_preset(path: Path) -> TrainPreset | ParaboloidPreset:
    """A training or paraboloid preset (``kind`` tells; a preset without it is a training one).

    The user's model file and data path are taken relative to the preset's folder."""
    preset = _load(PRESET_ADAPTER, path, MAX_PRESET_BYTES)
    if isinstance(preset, TrainPreset):
        base = Path(path).absolute().parent  # sessions record where the files were
        paths = {"model": with_base(preset.model, base), "dataset": with_base(preset.dataset, base)}
        preset = preset.model_copy(update=paths)
    return preset


def load_any_session(path: Path) -> Session | ParaboloidSession:
    """A session of either kind; a run left ``running`` by a dead process is ``stopped``."""
    session = _load(SESSION_ADAPTER, path, MAX_SESSION_BYTES, SAVED)
    if isinstance(session, Session):
        settle_status(session)
    return session


def run_is_dead(session: Session, now: datetime | None = None) -> bool:
    """Whether a session saved as running can no longer be: its process is gone from this host,
    or it has not saved for longer than STALE_SECONDS (a killed run, or one on another host)."""
    now = now or datetime.now(timezone.utc)
    beat = session.heartbeat or session.created  # written before heartbeats: when it began
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
    sketches) are passed over silently: a sessions folder holds both. A path that does not
    exist is an error: it may have been meant as a folder as well as a file.
    """
    for path in map(Path, paths):
        if not path.exists() and not path.is_symlink():
            raise BadInput("no such file or folder", source=path)
    files = [
        (file, True) if path.is_dir() else (path, False)
        for path in map(Path, paths)
        for file in (sorted(path.glob(SESSION_GLOB)) if path.is_dir() else [path])
    ]
    loaded, warnings = [], []
    with collector_paused():
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


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while thousands of sessions are built: their millions of
    numbers and lists hold no cycles, but each full collection walks all of them again
    (a fifth of the reading time at 2,000 sessions, ``benchmarks/many_sessions.py``)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
