"""Reading and writing presets and sessions: atomic writes, and errors that name file and field."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from tui_lab.errors import BadInput, from_validation_error
from tui_lab.schema import (
    PRESET_ADAPTER,
    SCHEMA_VERSION,
    SESSION_ADAPTER,
    ParaboloidPreset,
    ParaboloidSession,
    Session,
    TrainPreset,
)

SESSION_GLOB = "*.json"
T = TypeVar("T")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and a rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_model(model: BaseModel, path: Path) -> None:
    write_text_atomic(path, model.model_dump_json(indent=1, exclude_none=False) + "\n")


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput("file not found", source=path) from None
    except IsADirectoryError:
        raise BadInput("is a folder, not a file", source=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read: {error}", source=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})", source=path
        ) from None


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


def _load(adapter: TypeAdapter[T], path: Path) -> T:
    data = read_json(path)
    check_schema_version(data, path)
    try:
        return adapter.validate_python(data)
    except ValidationError as error:
        raise from_validation_error(error, path) from None


def load_preset(path: Path) -> TrainPreset | ParaboloidPreset:
    """A training or paraboloid preset (``kind`` tells; a preset without it is a training one)."""
    return _load(PRESET_ADAPTER, path)


def load_any_session(path: Path) -> Session | ParaboloidSession:
    return _load(SESSION_ADAPTER, path)


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


def load_sessions(paths: list[Path]) -> tuple[list[LoadedSession], list[str]]:
    """Training sessions from files and folders.

    Inside folders, broken files become warnings and other kinds of session (paraboloid
    sketches) are passed over silently: a sessions folder holds both.
    """
    loaded, warnings = [], []
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(path.glob(SESSION_GLOB)):
                try:
                    session = load_any_session(file)
                except BadInput as error:
                    warnings.append(f"skipped {error.describe()}")
                    continue
                if isinstance(session, Session):
                    loaded.append(LoadedSession(file, session))
        else:
            loaded.append(LoadedSession(path, load_session(path)))
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
    return path


def paraboloid_filename(session: ParaboloidSession) -> str:
    stamp = session.created.strftime("%Y%m%d-%H%M%S")
    return f"{session.preset.name}-{stamp}-{session.id[-6:]}.json".replace(" ", "_")


def save_paraboloid_session(session: ParaboloidSession, out_dir: Path) -> Path:
    """Write the session atomically into ``out_dir`` (created if needed); returns its path."""
    path = ensure_writable_dir(out_dir) / paraboloid_filename(session)
    save_model(session, path)
    return path
