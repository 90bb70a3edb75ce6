"""Which compute devices exist here, and turning a user's device string into a real one."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch

from tui_lab.errors import BadInput


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    description: str


def available_devices() -> list[DeviceInfo]:
    """cpu, every CUDA GPU with its name and memory, and mps where present."""
    devices = [DeviceInfo("cpu", f"CPU, {torch.get_num_threads()} threads")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gib = props.total_memory / 2**30
            devices.append(DeviceInfo(f"cuda:{index}", f"{props.name}, {gib:.0f} GiB"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(DeviceInfo("mps", "Apple GPU (Metal)"))
    return devices


def resolve_device(spec: str, *, source: str | None = None, field: str = "device") -> str:
    """Map ``auto``/``cuda``/``cuda:N``/``mps``/``cpu`` to a device that exists, or explain.

    ``cuda`` (and ``auto`` on a CUDA box) stays ``cuda`` when there are several GPUs: every one
    of them, over which a sweep spreads its runs (see `sweep_devices`).
    """
    names = [d.name for d in available_devices()]
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if "cuda:0" in names else next((n for n in names if n != "cpu"), "cpu")
    if spec == "cuda" and torch.cuda.device_count() > 1:
        return spec
    if spec == "cuda":
        spec = "cuda:0"
    if spec in names:
        return spec
    raise BadInput(
        f"device {spec!r} is not available here (available: {', '.join(names)}, auto)",
        source=source,
        field=field,
    )


def sweep_devices(device: str) -> list[str]:
    """The concrete devices a resolved device stands for: ``cuda`` is every visible GPU."""
    if device == "cuda":
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return [device]


def device_name(device: str) -> str:
    for info in available_devices():
        if info.name == device:
            return info.description
    return device


OOM_MESSAGES = (
    "out of memory",  # CUDA, MPS ("MPS backend out of memory")
    "can't allocate memory",  # cpu: "DefaultCPUAllocator: can't allocate memory"
    "cublas_status_alloc_failed",
    "cudnn_status_not_supported",  # cuDNN's way of failing a huge batch (as Lightning treats it)
)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error means "this does not fit in memory" rather than a bug."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(m in text for m in OOM_MESSAGES)


def free_memory() -> None:
    """Release what a failed attempt left behind (call after its exception is gone)."""
    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock timings measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
