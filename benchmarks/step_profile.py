"""Where one training step's time goes: torch.profiler over the engine's steps at one batch size.

For each kind of step (eager, and graphed on CUDA) it trains the engine for two short epochs under
the profiler and prints the operators with the most self time on the host and on the device, and
the number of kernel launches per step: a small-batch step on a GPU is launch-bound when the host
time per step is far above the device time.

Usage: python benchmarks/step_profile.py [--device cuda] [--batch 1] [--steps 200]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))  # step_times, beside this file

from step_times import bench_config, synthetic_data

from tui_lab.core.devices import resolve_device
from tui_lab.run.engine import train_run


def profile_engine(device: str, batch: int, steps: int, graphs: str) -> None:
    data = synthetic_data(steps * batch, device)
    config = bench_config(device, batch, 2, graphs)
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        kind = "?"
        for event in train_run(config, data):
            kind = getattr(getattr(event, "environment", None), "training_step", kind)
    events = prof.key_averages()
    total_steps = 2 * steps
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel"))
    graph_launches = sum(e.count for e in events if e.key == "cudaGraphLaunch")
    host = sum(e.self_cpu_time_total for e in events) / total_steps
    device_us = sum(getattr(e, "self_device_time_total", 0) for e in events) / total_steps
    print(f"\n{kind} steps, batch {batch}, {total_steps} steps on {device}: host {host:.0f} us a "
          f"step, device {device_us:.0f} us a step, kernel launches a step "
          f"{launches / total_steps:.1f}, graph replays a step "
          f"{graph_launches / total_steps:.2f}")  # fmt: skip
    sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=12, max_name_column_width=40))
    print(events.table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=40))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200, help="steps per epoch (2 epochs)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    device = "cuda:0" if device == "cuda" else device
    torch.set_num_threads(1)
    kinds = ["off", "on"] if device.startswith("cuda") else ["off"]
    for graphs in kinds:
        profile_engine(device, args.batch, args.steps, graphs)


if __name__ == "__main__":
    main()
