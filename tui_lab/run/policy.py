"""The machine policy, in one place: how many cores there are, how many threads a run takes,
how many runs share a GPU or a Ray node, and when seeds are trained as one stacked model.

Every threshold names the benchmark (``benchmarks/*.py``) that set it: measure again there
before changing one. Executors and the engine ask here; they hold no thresholds of their own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import torch

from tui_lab.run.stacked import stack_key, stacking_blocker
from tui_lab.schema import RayExecutorSettings, RunConfig

# --- cores and threads -------------------------------------------------------------------------

# torch's own thread count, before any run changes it (runs set their own, see cpu_threads).
DEFAULT_THREADS = torch.get_num_threads()
# Below this batch size each operation is too small to split across cores: extra threads only
# add synchronisation, which collapses throughput when anything else wants a core
# (benchmarks/throughput.py: batch 1-8 is fastest on one thread).
SMALL_BATCH = 16
IDLE_SAMPLE_SECONDS = 0.1  # a look at the cores before a run picks its thread count
EVAL_CHUNK = 2048  # samples per evaluation pass: bounds the activations' memory


def available_cores() -> int:
    """CPUs this process may run on (a container or taskset can allow fewer than the machine):
    the one count of cores every part of the lab uses."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def idle_cores(seconds: float = IDLE_SAMPLE_SECONDS) -> float | None:
    """How many cores sat idle over a short look (Linux /proc/stat), or None elsewhere."""
    try:
        before = _cpu_ticks()
        time.sleep(seconds)
        after = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        return None
    total = sum(after) - sum(before)
    idle = (after[3] + after[4]) - (before[3] + before[4])  # idle + iowait
    return available_cores() * idle / total if total > 0 else None


def _cpu_ticks() -> list[int]:
    with open("/proc/stat", encoding="ascii") as stat:
        return [int(field) for field in stat.readline().split()[1:]]


def preferred_threads(config: RunConfig) -> int:
    """The threads a run would take on an idle machine: the preset's count, else one for small
    batches (their operations are too small to split) and torch's default for larger ones."""
    if config.threads:
        return config.threads
    if config.batch_size < SMALL_BATCH:
        return 1
    return DEFAULT_THREADS


def cpu_threads(config: RunConfig) -> int:
    """The preset's thread count, else one thread for small batches, and for larger ones as
    many as there are idle cores now (at most torch's default): a thread whose core another
    program holds stalls every operation it shares, and throughput collapses (68 samples/s
    instead of 2,000 with one of two cores busy; benchmarks/throughput.py)."""
    preferred = preferred_threads(config)
    if config.threads or preferred == 1:
        return preferred
    idle = idle_cores()
    if idle is None:
        return DEFAULT_THREADS
    return max(1, min(DEFAULT_THREADS, round(idle)))


# --- runs at once (benchmarks/sweep.py, benchmarks/gpu_throughput.py) --------------------------

# Small-batch runs sharing one GPU: each keeps a CPU core busy launching kernels, and the GPU
# interleaves their small kernels. Batch-8 LeNet-5 runs on an H200 gave 2.7x one run's samples/s
# with 4 at once and 5.2x with 8 (benchmarks/gpu_throughput.py section 3, 2026-12-04).
GPU_SHARE = 8
# From this batch size a run's kernels fill a GPU by themselves.
GPU_LARGE_BATCH = 1024
# What one optimizer step costs on top of its samples, in samples (order of magnitude: a
# LeNet-5 step costs about as much fixed overhead as 30 samples' arithmetic on a CPU core;
# benchmarks/step_times.py).
STEP_COST_SAMPLES = 32

# On Ray (benchmarks/ray_sweep.py): a quarter of a GPU is plenty for the small models, and a
# CPU run from SMALL_BATCH up asks for this many CPUs (and takes as many torch threads).
RAY_SMALL_MODELS = ("mlp", "lenet5")
RAY_SMALL_MODEL_GPU_SHARE = 0.25
RAY_LARGE_BATCH_CPUS = 2


def cpu_threads_on_cluster(config: RunConfig, settings: RayExecutorSettings) -> int:
    """The preset's threads, else the CPUs asked per run, else 1 below SMALL_BATCH and more
    above."""
    if config.threads:
        return config.threads
    if settings.cpus_per_run:
        return settings.cpus_per_run
    return 1 if config.batch_size < SMALL_BATCH else RAY_LARGE_BATCH_CPUS


def ray_gpu_share(config: RunConfig, settings: RayExecutorSettings) -> float:
    """The share of a GPU a run asks Ray for."""
    return settings.gpus_per_run or (
        RAY_SMALL_MODEL_GPU_SHARE if config.model in RAY_SMALL_MODELS else 1.0
    )


# --- stacking (benchmarks/seeds.py) ------------------------------------------------------------

MAX_REPLICAS = 32  # more gains little and multiplies the memory of activations
# The wall time of a stack, per replica, against one seed trained alone, by batch size (the
# largest key not above the batch applies; past the last, a stack never pays). Measured with
# benchmarks/seeds.py for 8 LeNet-5 seeds on 2 quiet cores: 4.0x one seed at batch 1, 3.7-4.6x
# at 2, 4.9-6.6x at 16 and 32 (on busy cores less: 2.8x at 1, 4.6x at 8). The MLP is
# memory-bound at small batches and its batched matrix products lose: 12 stacked seeds took
# 10-20x one seed at batch 1.
CPU_STACK_COST = {
    "lenet5": {1: 0.50, 2: 0.52, 4: 0.55, 8: 0.60, 16: 0.72, 32: 0.82, 64: 1.0},
    "mlp": {1: 1.25},
}
# On CUDA, a run alone replays its step from a CUDA graph (about 0.12-0.33 ms at batch 1-128 on
# an H200), while an eager stack launches several times its kernels: 8 stacked LeNet-5 seeds
# took 19.3x one seed's time at batch 1, 19.2x at 4, 17.5x at 16, 13.4x at 64, 10.9x at 256 and
# 6.4x at 1024 (benchmarks/seeds.py --device cuda, NVIDIA H200, 2026-12-04, medians of 3).
# Per replica, by batch size as above; past the last key the last cost holds.
CUDA_STACK_COST = {1: 2.42, 4: 2.40, 16: 2.18, 64: 1.68, 256: 1.36, 1024: 0.80}
# A stack's step can be captured in a CUDA graph too (train_steps.GraphedStackedSteps), but that
# has not been measured on a GPU yet (benchmarks/seeds.py --device cuda measures it): until then
# it is taken only when a preset asks for cuda_graphs "on", and the table above stands.
CAPTURE_STACKS_BY_DEFAULT = False


def _by_batch(table: dict[int, float], batch_size: int) -> float:
    """The entry of the largest key not above ``batch_size`` (the first below the first key)."""
    below = [cost for batch, cost in sorted(table.items()) if batch <= batch_size]
    return below[-1] if below else next(iter(table.values()))


def stacked_cost(device_type: str, model: str, batch_size: int, replicas: int) -> float:
    """The wall time of a stack of ``replicas`` runs, in units of one of them trained alone."""
    if device_type == "cuda":
        return replicas * _by_batch(CUDA_STACK_COST, batch_size)
    table = CPU_STACK_COST.get(model, {1: 1.25})
    return replicas * _by_batch(table, batch_size)


def stacking_pays(
    device_type: str, model: str, batch_size: int, replicas: int, slots: float
) -> bool:
    """Whether a stack in one slot beats its runs trained separately over ``slots`` slots (the
    share of the executor's slots they would have). A tie goes to separate runs: their timings
    are each their own."""
    separate = replicas / max(1.0, min(replicas, slots))
    return stacked_cost(device_type, model, batch_size, replicas) < separate


def plan_tasks(runs: Sequence[RunConfig], slots: int = 1) -> list[list[int]]:
    """Run indices in tasks, for an executor that trains ``slots`` tasks at once: consecutive
    runs that may share a stacked model form one group; where their ``stacking`` setting asks
    for it (auto: where a stack in one slot beats the group's runs over its share of the slots)
    the group is one task, else each run is its own."""
    groups: list[list[int]] = []
    for index, config in enumerate(runs):
        last = groups[-1] if groups else None
        if (
            last is not None
            and len(last) < MAX_REPLICAS
            and config.stacking != "separate"
            and stack_key(runs[last[0]]) == stack_key(config)
            and stacking_blocker([runs[i] for i in (*last, index)]) is None
        ):
            last.append(index)
        else:
            groups.append([index])
    share = slots / len(groups) if groups else 1.0  # the slots each group would have
    planned = []
    for group in groups:
        config = runs[group[0]]
        wanted = config.stacking == "stacked" or (
            config.stacking == "auto"
            and stacking_pays(
                config.device.split(":")[0], config.model, config.batch_size, len(group), share
            )
        )
        planned += [group] if wanted and len(group) > 1 else [[i] for i in group]
    return planned
