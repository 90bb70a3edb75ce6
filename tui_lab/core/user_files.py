"""Reading the files a preset names: regular files only, hashed as read."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from tui_lab.errors import BadInput


def regular_file(path: Path, *, source: str | None, field: str) -> Path:
    """The path, if it is a regular file (a FIFO or a device would block or never end);
    else BadInput naming the file and the preset's field."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found", source=source, field=field) from None
    except OSError as error:
        raise BadInput(
            f"{path}: cannot read: {error.strerror or error}", source=source, field=field
        ) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise BadInput(f"{path}: {kind}, expected a file", source=source, field=field)
    return path


def read_bytes(path: Path, *, source: str | None, field: str) -> tuple[bytes, str]:
    """A regular file's bytes and their SHA-256: what runs is what the session records."""
    regular_file(path, source=source, field=field)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise BadInput(
            f"{path}: cannot read: {error.strerror or error}", source=source, field=field
        ) from None
    return raw, hashlib.sha256(raw).hexdigest()
