"""Errors the user can fix: bad presets, sessions, flags, paths and devices.

They carry the file and the field path so that the command line can print one clear line and
exit with code 2 instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

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
        """One line (a list of problems: one per line), with nothing a terminal would obey."""
        parts = [p for p in (self.source, self.field) if p]
        return printable(": ".join([*parts, self.message]), keep_newlines=True)


# Characters that a terminal obeys rather than shows: C0 and C1 controls, DEL, and the marks
# that reorder text (bidirectional overrides). From a file they could retitle or recolour the
# user's terminal, or hide what a line says; they are shown as escapes instead.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_SHOWN = 80  # characters of a value quoted in a message: one screen, whatever the file holds
MAX_PROBLEMS = 10  # problems listed in one message (a curve can have thousands)


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print: every control character as a visible escape (``\\x1b``)."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if keep_newlines and char in "\n\t":
            return char
        return char.encode("unicode_escape").decode("ascii")

    return _UNPRINTABLE.sub(escape, text)


def shown(value: Any) -> str:
    """A value quoted in a message: its repr, cut to MAX_SHOWN characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


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
            out += f".{part}" if out else part
    return out


def _has(data: Any, part: int | str) -> bool:
    """Whether ``part`` is a key (or index) of ``data``, as the file gave it."""
    if isinstance(data, dict):
        return isinstance(part, str) and part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


def users_path(loc: tuple[int | str, ...], data: Any, missing: bool) -> tuple[int | str, ...]:
    """The parts of ``loc`` that are the user's own keys and indices, found by walking ``data``.

    pydantic puts the union member it tried into the path (``constrained-float``,
    ``list[constrained-float]``, ``function-after[...]``, a tag); those are no key of the
    file and are left out. A missing field, the last part, is kept: it is the one to add.
    """
    kept: list[int | str] = []
    for index, part in enumerate(loc):
        if isinstance(data, BaseModel):  # a model given in code rather than read from a file
            data = data.model_dump()
        if _has(data, part):
            data = data[part]  # type: ignore[index]
        elif not (missing and index == len(loc) - 1 and isinstance(data, dict)):
            continue
        kept.append(part)
    return tuple(kept)


def readable_message(item: Mapping[str, Any]) -> str:
    """pydantic's message for one error; where it lists the choices it also names what was
    given: ``Input should be 'sgd', 'momentum', … or 'adamw' (got 'sgdd')``."""
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] in ("literal_error", "enum") and "input" in item:
        message += f" (got {shown(item['input'])})"
    return message


def _other_member(
    loc: tuple[int | str, ...], item: Mapping[str, Any], items: list[tuple[tuple, Any]]
) -> bool:
    """Whether ``item`` only says that the value is not of a union's other member (``lr``
    given as a list is not a number) while another error says what is wrong with it."""
    if not str(item["type"]).endswith("_type") or len(loc) == len(item["loc"]):
        return False
    return any(other is not item and where[: len(loc)] == loc for where, other in items)


def from_validation_error(error: ValidationError, source: str | Path, data: Any) -> BadInput:
    """One BadInput listing every problem pydantic found, each with its field path as the
    user wrote it (``data``, the input that was validated, tells the user's keys from
    pydantic's)."""
    items = [
        (users_path(item["loc"], data, missing=item["type"] == "missing"), item)
        for item in error.errors(include_url=False)
    ]
    lines = []
    told = [(loc, item) for loc, item in items if not _other_member(loc, item, items)]
    for loc, item in told or items:
        message = readable_message(item)
        if "builtin" in item["loc"] and loc and loc[-1] in OWN_FORMS:
            message += f", or your own: {OWN_FORMS[loc[-1]]}"
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "union_tag_invalid":
            loc = (*loc, "kind")
            ctx = item.get("ctx", {})
            message = f"unknown kind {shown(ctx.get('tag'))} (expected {ctx.get('expected_tags')})"
        lines.append((field_path(loc) or "(top level)", message))
    first_field, first_message = lines[0]
    more = "".join(f"\n  {f}: {m}" for f, m in lines[1:MAX_PROBLEMS])
    if len(lines) > MAX_PROBLEMS:
        more += f"\n  … and {len(lines) - MAX_PROBLEMS} more"
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
        return printable(f"{self.path}: cannot save: {self.reason}")
