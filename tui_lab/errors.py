"""Errors the user can fix: bad presets, sessions, flags, paths and devices.

They carry the file and the field path so that the command line can print one clear line and
exit with code 2 instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

# What ``bslab`` returns, in one place: scripts and schedulers rely on these.
EXIT_OK = 0
EXIT_FAILED = 1  # a run failed, a file could not be saved (the sweep stops), or anything else
EXIT_BAD_INPUT = 2  # the message names the file and the field
EXIT_INTERRUPTED = 130  # Ctrl+C: what ran so far is saved
# SIGTERM and SIGHUP save what ran too and exit with 128 + their number, 143 and 129
# (tui_lab.run.signals).


class BadInput(Exception):
    """Input the user must fix; printed as ``source: field: message`` and exit code 2."""

    def __init__(self, message: str, *, source: str | Path | None = None, field: str = ""):
        self.message = message
        self.source = str(source) if source is not None else None
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        return ": ".join([*parts, self.message])


# Names pydantic puts in an error's path for the member of a union it tried: not the user's fields.
UNION_TAGS = ("int", "literal['full']", "train", "paraboloid", "builtin", "user")
# What a preset may give instead of a built-in model or data set's name.
OWN_FORMS = {
    "model": '"package.module:factory" or {"file": "nets.py", "factory": "build"}',
    "dataset": '{"path": "data.npz"} (x and y) or {"path": "images/"} (a folder per class)',
}


def field_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into ``optimizers[1].lr`` style."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def readable_message(item: Mapping[str, Any]) -> str:
    """pydantic's message for one error; where it lists the choices it also names what was
    given: ``Input should be 'sgd', 'momentum', … or 'adamw' (got 'sgdd')``."""
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] in ("literal_error", "enum") and "input" in item:
        message += f" (got {item['input']!r})"
    return message


def from_validation_error(error: ValidationError, source: str | Path) -> BadInput:
    """One BadInput listing every problem pydantic found, each with its field path."""
    lines = []
    for item in error.errors(include_url=False):
        # Union members and validator wrappers add noise to the path; keep the user's field names.
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        loc = tuple(p for p in loc if p not in UNION_TAGS)
        message = readable_message(item)
        if "builtin" in item["loc"] and loc and loc[-1] in OWN_FORMS:
            message += f", or your own: {OWN_FORMS[loc[-1]]}"
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "union_tag_invalid":
            loc = (*loc, "kind")
            ctx = item.get("ctx", {})
            message = f"unknown kind {ctx.get('tag')!r} (expected {ctx.get('expected_tags')})"
        lines.append((field_path(loc) or "(top level)", message))
    first_field, first_message = lines[0]
    more = "".join(f"\n  {f}: {m}" for f, m in lines[1:])
    return BadInput(first_message + more, source=source, field=first_field)


class StorageFault(Exception):
    """A file could not be written: the disk is full, the folder was removed or is read-only.

    Not the user's input (exit code 1, not 2), but still one clear line, never a traceback.
    """

    def __init__(self, path: str | Path, error: OSError):
        self.path = str(path)
        self.reason = error.strerror or str(error)
        self.errno = error.errno
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.path}: cannot save: {self.reason}"
