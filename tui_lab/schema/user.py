"""The user's own model and data, as a preset names them and a session records them.

These are descriptions only: nothing here imports or reads the user's files, so reading a
session that names a model module stays safe. ``core.user_model`` and ``core.user_data`` load
them, and only when a sweep is about to train.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field, JsonValue, model_validator

from tui_lab.schema.common import NonNegativeInt, StrictModel

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
DOTTED = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
MODULE_FACTORY = DOTTED[:-1] + r":[A-Za-z_][A-Za-z0-9_]*$"  # "package.module:factory"
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
TENSOR_SUFFIXES = (".npz", ".pt")


class UserModel(StrictModel):
    """A factory in the user's code: ``factory(input_shape, num_classes, **kwargs)`` returns the
    network. In a preset, ``"my_nets.small:build"`` (a module on the Python path) or an object
    with ``file`` (a .py file, relative to the preset) or ``module``, and ``factory``."""

    module: Annotated[str, Field(max_length=200, pattern=DOTTED)] | None = Field(
        None, description="A module on the Python path, e.g. my_nets.small."
    )
    file: Path | None = Field(None, description="A Python file, relative to the preset's folder.")
    factory: Annotated[str, Field(max_length=100, pattern=IDENTIFIER)] = Field(
        description="The function (or class) in it that builds the network."
    )
    kwargs: dict[str, JsonValue] = Field(
        default_factory=dict, description="More keyword arguments for the factory."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        """``"package.module:factory"``: the short form for a module on the Python path."""
        if isinstance(value, str):
            module, _, factory = value.partition(":")
            return {"module": module, "factory": factory}
        return value

    @model_validator(mode="after")
    def _module_or_file(self) -> UserModel:
        if (self.module is None) == (self.file is None):
            raise ValueError("give either 'module' or 'file' (exactly one)")
        if self.file is not None and self.file.suffix != ".py":
            raise ValueError(f"'file' must be a .py file, not {self.file.name!r}")
        return self

    @property
    def origin(self) -> str:
        """Where the factory comes from: the module's name or the file's name."""
        return self.module if self.module is not None else Path(self.file or "").name

    def __str__(self) -> str:
        """``nets.py:build(width=8)``: how tables and titles name the model."""
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.kwargs.items()))
        return f"{self.origin}:{self.factory}" + (f"({args})" if args else "")

    def __hash__(self) -> int:  # name sets and dict keys take built-in names and these alike
        return hash(self.model_dump_json())


class CheckedModel(UserModel):
    """A user model as a run records it: checked before the sweep (built, one batch forward and
    backward), with the hash of its source so that two versions are never taken as one."""

    sha256: Sha256 | None = Field(
        None, description="SHA-256 of the source file (none for a module without a file)."
    )
    parameters: NonNegativeInt = Field(description="Trainable parameters, as built for the data.")
    stacking_blocker: str | None = Field(
        None, description="Why its runs cannot be stacked with torch.func; none if they can."
    )

    def __str__(self) -> str:
        return super().__str__() + (f"@{self.sha256[:8]}" if self.sha256 else "")


class UserData(StrictModel):
    """The user's data set: an image folder (one sub-folder per class, torchvision's ImageFolder
    layout) or a tensor file (.npz or .pt holding ``x`` and ``y``), split into training and
    validation by the preset's seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(
        description="An image folder, or a .npz/.pt file; relative to the preset's folder."
    )
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.2, description="Share of the samples held out for validation (fixed by the seed)."
    )

    @model_validator(mode="after")
    def _folder_or_tensor_file(self) -> UserData:
        suffix = self.path.suffix.lower()
        if suffix and suffix not in TENSOR_SUFFIXES:
            raise ValueError(
                f"'path' must be an image folder or a {' or '.join(TENSOR_SUFFIXES)} file, "
                f"not {self.path.name!r}"
            )
        return self

    @property
    def is_tensor_file(self) -> bool:
        return self.path.suffix.lower() in TENSOR_SUFFIXES

    def __str__(self) -> str:
        return self.path.name


def with_base(value: Any, base: Path) -> Any:
    """A spec's relative paths taken relative to ``base`` (the preset's folder)."""
    if isinstance(value, UserModel) and value.file is not None:
        return value.updated(file=base / value.file.expanduser())
    if isinstance(value, UserData):
        return value.updated(path=base / value.path.expanduser())
    return value
