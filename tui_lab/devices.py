"""Which compute devices exist here, and turning a user's device string into a real one."""

from __future__ import annotations

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
    """Map ``auto``/``cuda``/``cuda:N``/``mps``/``cpu`` to a device that exists, or explain."""
    names = [d.name for d in available_devices()]
    spec = spec.strip().lower()
    if spec == "auto":
        return next((n for n in names if n != "cpu"), "cpu")
    if spec == "cuda":
        spec = "cuda:0"
    if spec in names:
        return spec
    raise BadInput(
        f"device {spec!r} is not available here (available: {', '.join(names)}, auto)",
        source=source,
        field=field,
    )


def device_name(device: str) -> str:
    for info in available_devices():
        if info.name == device:
            return info.description
    return device
