"""The user's own network: imported from the factory a preset names, checked before any run.

A preset that names code runs that code. It is imported only here, when a sweep is prepared or
a worker rebuilds a run's model, never when a session is read. The check builds the model for
the data, runs one batch forward and backward, and turns every way that can fail into BadInput
naming the preset's field, so a bad factory ends the sweep before it starts, not mid-way.
"""

from __future__ import annotations

import copy
import importlib
import sys
import sysconfig
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from tui_lab.core.user_files import read_bytes
from tui_lab.errors import BadInput
from tui_lab.schema import CheckedModel, UserModel

if TYPE_CHECKING:
    from tui_lab.core.data import Data

CHECK_BATCH = 8  # samples the check runs forward and backward (batch norm needs more than 1)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
Factory = Callable[..., object]
# bslab's own files, torch's and the standard library's: a line there is not the user's to fix.
NOT_USER_CODE = tuple(
    {str(Path(__file__).resolve().parent.parent)}
    | {sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib")}
)

_loaded_files: dict[tuple[Path, str], types.ModuleType] = {}  # one module per file version


def _where(error: BaseException) -> str:
    """`` (nets.py line 12)``: the line of the user's code that raised, if it is known."""
    if isinstance(error, SyntaxError) and error.filename and error.lineno:
        return f" ({Path(error.filename).name} line {error.lineno})"
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith(NOT_USER_CODE)
    ]
    if not frames:
        return ""
    return f" ({Path(frames[-1].filename).name} line {frames[-1].lineno})"


def _explain(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}{': ' + text if text else ''}{_where(error)}"


def _import_file(path: Path, source: str | None) -> tuple[types.ModuleType, str]:
    """The file run as a module, from the very bytes that were hashed."""
    raw, sha256 = read_bytes(path, source=source, field="model.file")
    key = (path.resolve(), sha256)
    if key not in _loaded_files:
        name = f"bslab_user_model_{sha256[:16]}"
        module = types.ModuleType(name)
        module.__file__ = str(path)
        sys.modules[name] = module  # classes defined there must be findable by name (pickle)
        try:
            exec(compile(raw, str(path), "exec"), module.__dict__)
        except (Exception, SystemExit) as error:
            del sys.modules[name]
            raise BadInput(
                f"cannot import {path}: {_explain(error)}", source=source, field="model.file"
            ) from None
        _loaded_files[key] = module
    return _loaded_files[key], sha256


def _import_module(name: str, source: str | None) -> tuple[types.ModuleType, str | None]:
    try:
        module = importlib.import_module(name)
    except (Exception, SystemExit) as error:
        raise BadInput(
            f"cannot import {name}: {_explain(error)}", source=source, field="model.module"
        ) from None
    file = getattr(module, "__file__", None)
    if file is None:
        return module, None
    return module, read_bytes(Path(file), source=source, field="model.module")[1]


def load_factory(spec: UserModel, source: str | None = None) -> tuple[Factory, str | None]:
    """The factory the spec names, and the SHA-256 of the file it comes from."""
    if spec.file is not None:
        module, sha256 = _import_file(spec.file, source)
    else:
        assert spec.module is not None
        module, sha256 = _import_module(spec.module, source)
    factory = getattr(module, spec.factory, None)
    if not callable(factory):
        found = "is not callable" if factory is not None else "is not defined there"
        raise BadInput(
            f"{spec.factory!r} {found} ({spec.origin})", source=source, field="model.factory"
        )
    return factory, sha256


def build_user_model(
    spec: UserModel,
    input_shape: tuple[int, ...],
    num_classes: int,
    source: str | None = None,
) -> nn.Module:
    """The spec's model, for workers that rebuild it. A checked spec is rebuilt only from the
    same source: a file edited since the check is an error, not a silently different model."""
    factory, sha256 = load_factory(spec, source)
    if isinstance(spec, CheckedModel) and spec.sha256 != sha256:
        raise BadInput(
            f"{spec.origin} changed since the sweep checked it (SHA-256 {spec.sha256} then, "
            f"{sha256} now)",
            source=source,
            field="model",
        )
    return _call_factory(spec, factory, input_shape, num_classes, source)


def _call_factory(
    spec: UserModel,
    factory: Factory,
    input_shape: tuple[int, ...],
    num_classes: int,
    source: str | None,
) -> nn.Module:
    """``factory(input_shape, num_classes, **kwargs)``, which must return an nn.Module."""
    try:
        model = factory(tuple(input_shape), num_classes, **spec.kwargs)
    except (Exception, SystemExit) as error:
        raise BadInput(
            f"{spec} raised {_explain(error)}", source=source, field="model.factory"
        ) from None
    if not isinstance(model, nn.Module):
        raise BadInput(
            f"{spec} returned {type(model).__name__}, not a torch.nn.Module",
            source=source,
            field="model.factory",
        )
    return model


def check_user_model(spec: UserModel, data: Data, source: str | None = None) -> CheckedModel:
    """Build the model for the data, run one batch forward and backward; the checked spec
    records the source's hash, the parameter count and whether its runs can be stacked."""
    factory, sha256 = load_factory(spec, source)
    model = _call_factory(spec, factory, data.input_shape, data.num_classes, source)
    x, y = data.train_x[:CHECK_BATCH], data.train_y[:CHECK_BATCH]
    model.train()
    try:
        logits = model(x)
    except Exception as error:
        raise BadInput(
            f"{spec} fails on a batch of shape {tuple(x.shape)}: {_explain(error)}",
            source=source,
            field="model",
        ) from None
    expected = (len(x), data.num_classes)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise BadInput(
            f"{spec} returns {got} for a batch of {len(x)}, expected {expected}: one score "
            f"per class, and the data has {data.num_classes} classes",
            source=source,
            field="model",
        )
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise BadInput(f"{spec} has no trainable parameters", source=source, field="model")
    try:
        F.cross_entropy(logits, y).backward()
    except Exception as error:
        raise BadInput(
            f"{spec}: the backward pass fails: {_explain(error)}", source=source, field="model"
        ) from None
    return CheckedModel(
        **spec.model_dump(include=set(UserModel.model_fields)),
        sha256=sha256,
        parameters=sum(p.numel() for p in parameters),
        stacking_blocker=stacking_blocker_of(model, x, y),
    )


def stacking_blocker_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> str | None:
    """Why replicas of this model cannot train as one stacked model (run.stacked), found by
    trying it on two replicas; None if they can."""
    norms = [type(m).__name__ for m in model.modules() if isinstance(m, BATCH_NORMS)]
    if norms:
        return f"it has batch norm ({norms[0]}), whose running statistics vmap cannot update"
    replicas = [copy.deepcopy(model) for _ in range(2)]
    base = copy.deepcopy(model).to("meta")
    try:
        params, buffers = stack_module_state(replicas)

        def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
            return functional_call(base, (p, b), (x,))

        logits = vmap(call)(params, buffers)
        F.cross_entropy(logits.flatten(0, 1), y.repeat(len(replicas))).backward()
    except Exception as error:
        return f"torch.func cannot stack it ({_explain(error)})"
    return None
