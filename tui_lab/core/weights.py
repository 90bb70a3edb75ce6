"""Model weights: as one flat vector (for geometry in weight space) and as files.

A session's final weights are kept beside its JSON file in safetensors format, which holds only
tensors, so loading a file someone sent you cannot run code (unlike a pickled `torch.save`).
Writes are atomic: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import Tensor, nn
from torch.optim import Optimizer

from tui_lab.core.storage import read_bytes, write_bytes_atomic
from tui_lab.errors import BadInput

MAX_WEIGHTS_BYTES = 2**30  # far above the lab's models (cnn: a few MiB); read whole into memory


def weights_path_for(session_path: Path) -> Path:
    """The weights file of a session: same folder and stem, `.safetensors` suffix."""
    return Path(session_path).with_suffix(".safetensors")


def save_weights(weights: torch.nn.Module | Mapping[str, torch.Tensor], path: Path) -> None:
    """Write a model's state dict (parameters and buffers, on CPU) to `path` atomically."""
    path = Path(path)
    state = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
    # Own contiguous CPU copies: safetensors refuses shared or strided storage (tied weights).
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    write_bytes_atomic(path, save(tensors))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict saved by `save_weights` onto the CPU; never executes code.

    A missing or unreadable file is `BadInput` naming the file (exit code 2 on the command line),
    and so is a symbolic link (it could lead out of the session's folder) or a named pipe.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise BadInput("no weights file beside this session", source=path)
    data = read_bytes(path, MAX_WEIGHTS_BYTES, follow_links=False)
    if len(data) > MAX_WEIGHTS_BYTES:
        raise BadInput(f"larger than {MAX_WEIGHTS_BYTES // 2**20} MiB", source=path)
    try:
        return load(data)
    except SafetensorError as e:
        raise BadInput(f"not a readable safetensors file ({e})", source=path) from e


def check_weights_match(model: nn.Module, weights: dict[str, Tensor], path: Path) -> None:
    """Weights read from a file must be the model's own: the same tensors, shapes and dtypes
    (a crafted or foreign file is BadInput naming it, not an error deep inside torch)."""
    expected = model.state_dict()
    if set(weights) != set(expected):
        missing = sorted(set(expected) - set(weights))[:3]
        extra = sorted(set(weights) - set(expected))[:3]
        raise BadInput(
            f"not the weights of a {type(model).__name__} (missing {missing}, extra {extra})",
            source=path,
        )
    for name, tensor in weights.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise BadInput(
                f"tensor {name!r} is {tensor.dtype} {tuple(tensor.shape)}; the model's is "
                f"{want.dtype} {tuple(want.shape)}",
                source=path,
            )


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    """All parameters as one detached vector, in `model.parameters()` order, on their device.

    Each parameter is flattened in its logical (row-major) order whatever its memory layout
    (channels-last weights included), which is the order `set_flat_parameters` reads back."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def set_flat_parameters(model: torch.nn.Module, flat: torch.Tensor) -> None:
    """Copy a vector from `flat_parameters` into the parameters, in place.

    In place (unlike `vector_to_parameters`, which rebinds `.data`) so that optimizers, compiled
    graphs and anything else holding the parameters' storage keep seeing the same tensors.
    """
    params = list(model.parameters())
    sizes = [p.numel() for p in params]
    if flat.numel() != sum(sizes):
        raise ValueError(f"vector has {flat.numel()} values, the model {sum(sizes)} parameters")
    with torch.no_grad():
        for param, chunk in zip(params, flat.split(sizes), strict=True):
            param.copy_(chunk.view_as(param))


def _to_cpu(value):
    """A deep copy with every tensor on the cpu, so a snapshot costs no device memory."""
    if isinstance(value, Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return copy.deepcopy(value)


@contextmanager
def preserved_state(model: nn.Module, optimizer: Optimizer | None = None) -> Iterator[None]:
    """Restore the model's (and optimizer's) state and train/eval mode on exit, even on error.

    Restoring copies into the existing parameters in place; an optimizer whose state was empty
    at entry (a fresh one) gets it emptied again, which frees memory rather than needing it.
    """
    model_state = _to_cpu(model.state_dict())
    optimizer_state = None if optimizer is None else _to_cpu(optimizer.state_dict())
    was_training = model.training
    try:
        yield
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(model_state)
        if optimizer is not None:
            optimizer.load_state_dict(optimizer_state)
        model.train(was_training)


@contextmanager
def preserved_weights(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Evaluate the model at other weights inside, in eval mode; on leaving, even through an
    exception, its state dict and train/eval mode are exactly what they were."""
    with preserved_state(model):
        model.eval()
        yield model
