"""Several runs of one configuration trained together as one stacked model.

Runs that differ only in seed (and learning rate) are K replicas of one network: their weights
are stacked along a new first dimension (``torch.func.stack_module_state``) and one ``vmap``-ed
``functional_call`` runs all K forward and backward passes as batched matrix products and
grouped convolutions. Each replica has its own initialisation, its own batch order (its seed's
permutation) and its own learning rate; its numbers match training it alone, within
floating-point tolerance (the tests check this).

The optimizer is the run's own torch optimizer over the stacked tensors: every optimizer here
works element by element, so its state for replica k is replica k's state. Learning rates per
replica are applied by scaling the step's change by lr_k / lr_0 after the step: exact for SGD,
momentum, RMSprop, Adagrad and Adam(W), whose state does not depend on the applied update, and
not for Rprop and Adadelta, which are therefore stacked only when all replicas share one lr.

Whether stacking pays depends on the device and batch size (see ``stacking_pays``); the sweep
plans the tasks and each session records how many runs were stacked with it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from tui_lab.analysis.memory import PeakMemory
from tui_lab.core.data import Data
from tui_lab.core.devices import is_out_of_memory, synchronize
from tui_lab.core.models import seeded_model
from tui_lab.core.optimizers import build_optimizer, warmup_factor
from tui_lab.run.engine import (
    EVAL_CHUNK,
    Instruments,
    NeverStop,
    NoiseProbe,
    StopSignal,
    cpu_threads,
    environment,
    reached_target,
    report_due,
    steps_per_epoch,
    train_run,
)
from tui_lab.run.events import EpochEnded, Event, RunEnded, RunStarted, StepStats
from tui_lab.schema import CheckedModel, EpochRecord, RunConfig, Status
from tui_lab.schema.analysis import NoiseScalePoint

# Models without batch norm: its running statistics are updated in place, which vmap forbids.
STACKABLE_MODELS = {"lenet5", "mlp"}
# Optimizers whose state does not depend on the applied update: the change scales with the lr.
LR_SCALABLE = {"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw"}
Ending = tuple[Status, str, int]  # how a run ended early: status, message, steps taken
MAX_REPLICAS = 32  # more gains little and multiplies the memory of activations
# Measured with benchmarks/seeds.py, against separate runs sharing the cores perfectly (K/2
# times one seed's wall time): 8 stacked LeNet-5 seeds took 2.8x one seed's wall time at batch
# 1, 3.5x at 2, 4.1x at 4 and 4.6x at 8 on 2 busy cores; on 2 quiet cores, with channels-last
# single runs, 4.0x at batch 1 and 3.7-4.6x at 2 (a tie with separate runs) and 4.9-6.6x at 16
# and 32. So a CPU stacks LeNet-5 up to batch 2, where it ties when quiet and wins when busy.
# The MLP is memory-bound at small batches (its weights dwarf its arithmetic) and its batched
# matrix products lose: 12 stacked seeds took 10-20x one seed at batch 1, so a CPU never stacks
# it. On CUDA a stack fills the GPU that one small run leaves idle, up to about this many samples
# a step (to be confirmed by the GPU section of the benchmark).
CPU_STACK_MAX_BATCH = {"lenet5": 2, "mlp": 0}
CUDA_STACK_MAX_SAMPLES = 8192


def stack_key(config: RunConfig) -> str:
    """Runs with equal keys can share a stacked model: all but seed and lr are the same."""
    optimizer = config.optimizer.model_dump_json(exclude={"lr"})
    rest = config.model_dump_json(exclude={"seed", "lr", "lr_factor", "group_id", "optimizer"})
    return optimizer + rest


def stacking_blocker(configs: Sequence[RunConfig]) -> str | None:
    """Why these runs cannot be trained as one stacked model; None if they can."""
    first = configs[0]
    if len({stack_key(c) for c in configs}) > 1:
        return "the runs differ in more than seed and learning rate"
    if isinstance(first.model, CheckedModel):  # the user's: its check tried stacking it
        if first.model.stacking_blocker is not None:
            return f"{first.model}: {first.model.stacking_blocker}"
    elif first.model not in STACKABLE_MODELS:
        return f"{first.model} has batch norm, whose running statistics vmap cannot update"
    if first.micro_batch_size is not None:
        return "micro-batches are accumulated one replica at a time"
    if len({c.lr for c in configs}) > 1 and first.optimizer.name not in LR_SCALABLE:
        return f"{first.optimizer.name}'s state depends on its lr: one lr per stack"
    return None


def stacking_pays(device_type: str, model: str, batch_size: int, replicas: int) -> bool:
    """The rule measured by benchmarks/seeds.py: stack small batches, where one run leaves the
    hardware idle; large batches already fill it and a stack only adds copies."""
    if device_type == "cuda":
        return batch_size * replicas <= CUDA_STACK_MAX_SAMPLES
    return batch_size <= CPU_STACK_MAX_BATCH.get(model, 0)


def plan_tasks(runs: Sequence[RunConfig]) -> list[list[int]]:
    """Run indices in tasks: consecutive runs that may share a stacked model, and where their
    ``stacking`` setting (auto: where it pays) asks for it, form one task; the rest run alone."""
    tasks: list[list[int]] = []
    for index, config in enumerate(runs):
        last = tasks[-1] if tasks else None
        if (
            last is not None
            and len(last) < MAX_REPLICAS
            and config.stacking != "separate"
            and stack_key(runs[last[0]]) == stack_key(config)
            and stacking_blocker([runs[i] for i in (*last, index)]) is None
        ):
            last.append(index)
        else:
            tasks.append([index])
    planned = []
    for task in tasks:
        config = runs[task[0]]
        wanted = config.stacking == "stacked" or (
            config.stacking == "auto"
            and stacking_pays(
                config.device.split(":")[0], config.model, config.batch_size, len(task)
            )
        )
        planned += [task] if wanted and len(task) > 1 else [[i] for i in task]
    return planned


class StackedModel:
    """K replicas of one network as stacked parameter tensors, called through vmap."""

    def __init__(self, models: Sequence[nn.Module]):
        self.models = list(models)
        params, buffers = stack_module_state(self.models)
        self.params: dict[str, Tensor] = params
        self.buffers: dict[str, Tensor] = buffers
        self.base = copy.deepcopy(self.models[0]).to("meta")
        self.replicas = len(self.models)

    def _call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def logits(self, x: Tensor) -> Tensor:
        """Outputs [K, B, classes] for inputs [K, B, ...] (each replica its own batch)."""
        return vmap(self._call)(self.params, self.buffers, x)

    def shared_logits(self, x: Tensor) -> Tensor:
        """Outputs [K, B, classes] for one batch [B, ...] that every replica sees."""
        return vmap(self._call, in_dims=(0, 0, None))(self.params, self.buffers, x)

    def flat(self, replica: int) -> Tensor:
        """Replica k's parameters as one vector, in ``model.parameters()`` order."""
        return torch.cat([p[replica].detach().reshape(-1) for p in self.params.values()])

    def unstacked(self, replica: int) -> nn.Module:
        """Replica k as an ordinary module holding its current weights."""
        model = self.models[replica]
        with torch.no_grad():
            for name, tensor in model.named_parameters():
                tensor.copy_(self.params[name][replica])
            for name, tensor in model.named_buffers():
                tensor.copy_(self.buffers[name][replica])
        return model


def replica_losses(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of each replica over its own batch: [K]."""
    k, b, classes = logits.shape
    losses = F.cross_entropy(logits.reshape(k * b, classes), y.reshape(k * b), reduction="none")
    return losses.view(k, b).mean(1)


def evaluate_stacked(stack: StackedModel, x: Tensor, y: Tensor) -> tuple[list[float], list[float]]:
    """Each replica's mean loss and accuracy over one split (one host sync)."""
    loss_sum = torch.zeros(stack.replicas, device=x.device)
    correct = torch.zeros(stack.replicas, device=x.device)
    with torch.no_grad():
        for start in range(0, len(x), EVAL_CHUNK):
            inputs, targets = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            logits = stack.shared_logits(inputs)
            expanded = targets.expand(stack.replicas, -1)
            loss_sum += replica_losses(logits, expanded) * len(inputs)
            correct += (logits.argmax(2) == expanded).sum(1)
    losses, accuracies = torch.stack([loss_sum / len(x), correct / len(x)]).tolist()
    return losses, accuracies


def train_stacked(
    configs: Sequence[RunConfig],
    data: Data,
    *,
    run_indices: Sequence[int],
    stop: StopSignal | None = None,
) -> Iterator[Event]:
    """Train the runs together, yielding each run's events (tagged with its run index) as
    ``train_run`` would; each run's last event is its RunEnded, with its final weights."""
    if (blocker := stacking_blocker(configs)) is not None:
        raise ValueError(f"cannot stack these runs: {blocker}")
    stop = stop or NeverStop()
    first = configs[0]
    device = torch.device(first.device)
    steps = steps_per_epoch(data.n_train, first.batch_size)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(first))
    env = environment(first.device)
    for index, config in zip(run_indices, configs, strict=True):
        yield RunStarted(
            index, config, env, data.n_train, len(data.val_y), steps, stacked=len(configs)
        )
    memory = PeakMemory(device)
    ended: dict[int, Ending] = {}
    stack = None
    instruments: list[Instruments] = []
    try:
        memory.reset()
        data = data.to(device)
        stack = StackedModel([seeded_model(c.model, data, c.seed, device) for c in configs])
        instruments = [Instruments.for_run(c, c.epochs * steps, data.n_train) for c in configs]
        yield from _epochs(configs, data, stack, instruments, list(run_indices), stop, ended)
    except Exception as error:
        status: Status = "out_of_memory" if is_out_of_memory(error) else "failed"
        for index in run_indices:
            ended.setdefault(index, (status, f"{type(error).__name__}: {error}", 0))
        stack = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak = memory.read()
    for k, (index, config) in enumerate(zip(run_indices, configs, strict=True)):
        status, message, last_step = ended.get(index, ("completed", "", config.epochs * steps))
        model = stack.unstacked(k) if stack is not None else None
        sketch = None
        if model is not None and status == "completed":
            sketch = instruments[k].sketch(model, data, step=last_step)
        weights = None
        if model is not None:
            weights = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}
        yield RunEnded(index, status, message, peak, sketch, weights)


def train_task(
    runs: Sequence[tuple[int, RunConfig]], data: Data, stop: StopSignal | None = None
) -> Iterator[Event]:
    """An executor's task: one run alone, or several as one stacked model."""
    if len(runs) == 1:
        index, config = runs[0]
        return train_run(config, data, run_index=index, stop=stop)
    return train_stacked([c for _, c in runs], data, run_indices=[i for i, _ in runs], stop=stop)


def _apply_lr_ratios(params: list[Tensor], before: list[Tensor], ratios: Tensor) -> None:
    """Scale each replica's change of this step by lr_k / lr_0: p = before + r (p - before)."""
    with torch.no_grad():
        for p, old in zip(params, before, strict=True):
            r = ratios.view(-1, *([1] * (p.dim() - 1)))
            p.mul_(r).add_(old.mul_(1 - r))


def _epochs(
    configs: Sequence[RunConfig],
    data: Data,
    stack: StackedModel,
    instruments: list[Instruments],
    indices: list[int],
    stop: StopSignal,
    ended: dict[int, Ending],
) -> Iterator[Event]:
    """The training loop of ``engine._epochs``, for K replicas; fills ``ended`` with the
    status of each run that stopped early (diverged or interrupted)."""
    first = configs[0]
    device = data.train_x.device
    batch, n_train, k = first.batch_size, data.n_train, len(configs)
    steps = steps_per_epoch(n_train, batch)
    shufflers = [torch.Generator().manual_seed(c.seed) for c in configs]
    params = list(stack.params.values())
    optimizer = build_optimizer(params, first.optimizer, first.lr)
    lrs = torch.tensor([c.lr for c in configs], device=device)
    ratios = lrs / first.lr
    scaled = bool((ratios != 1).any())
    noise = [i.noise for i in instruments]
    trajectories = [i.trajectory for i in instruments]
    warming_up = first.lr_scaling.warmup_epochs > 0
    factor, step, train_seconds = 1.0, 0, 0.0
    for epoch in range(1, first.epochs + 1):
        order = torch.stack([torch.randperm(n_train, generator=g) for g in shufflers]).to(device)
        epoch_loss = torch.zeros(k, device=device)
        interval_loss = torch.zeros(k, device=device)
        interval_steps = 0
        interval_start = time.perf_counter()
        epoch_start = interval_start
        for i in range(steps):
            for r, trajectory in enumerate(trajectories):
                if trajectory is not None and trajectory.wants(step):
                    trajectory.record_flat(stack.flat(r), step)
            if warming_up:
                factor = warmup_factor(first.lr_scaling, step, steps)
                for group in optimizer.param_groups:
                    group["lr"] = first.lr * factor
            idx = order[:, i * batch : (i + 1) * batch]
            x, y = data.train_x[idx], data.train_y[idx]
            optimizer.zero_grad(set_to_none=True)
            loss = replica_losses(stack.logits(x), y)
            loss.sum().backward()
            loss = loss.detach()
            before = [p.detach().clone() for p in params] if scaled else []
            optimizer.step()
            if scaled:
                _apply_lr_ratios(params, before, ratios)
            interval_loss += loss
            interval_steps += 1
            step += 1
            if report_due(time.perf_counter() - interval_start, i == steps - 1):
                means = (interval_loss / interval_steps).tolist()  # the interval's one host sync
                now = time.perf_counter()
                seconds = train_seconds + (now - epoch_start)
                samples_seen = (epoch - 1) * n_train + min((i + 1) * batch, n_train)
                speed = interval_steps * batch / max(now - interval_start, 1e-9)
                for r, index in enumerate(indices):
                    if index in ended:
                        continue
                    yield StepStats(
                        index,
                        epoch,
                        step,
                        (i + 1) / steps,
                        samples_seen,
                        seconds,
                        means[r],
                        configs[r].lr * factor,
                        speed,
                    )
                    if not math.isfinite(means[r]):
                        message = f"training loss became {means[r]} at step {step}"
                        ended[index] = ("diverged", message, step)
                if len(ended) == k:
                    return
                epoch_loss += interval_loss
                interval_loss.zero_()
                interval_steps = 0
                interval_start = time.perf_counter()
                epoch_start += interval_start - now
            if stop.is_set():
                for index in indices:
                    message = f"stopped during epoch {epoch} at step {step}"
                    ended.setdefault(index, ("interrupted", message, step))
                return
        synchronize(device)
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_seconds
        eval_start = time.perf_counter()
        val_losses, val_accuracies = evaluate_stacked(stack, data.val_x, data.val_y)
        eval_seconds = time.perf_counter() - eval_start
        train_losses = (epoch_loss / steps).tolist()
        for r, index in enumerate(indices):
            if index in ended:
                continue
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_losses[r],
                val_loss=val_losses[r],
                val_accuracy=val_accuracies[r],
                train_seconds=epoch_seconds,
                eval_seconds=eval_seconds,
                samples_seen=epoch * n_train,
                steps=step,
                lr=configs[r].lr * factor,
            )
            points = _noise_points(stack, r, noise[r], data, record, configs[r])
            yield EpochEnded(index, record, points)
            if not math.isfinite(val_losses[r]):
                message = f"validation loss became {val_losses[r]} after epoch {epoch}"
                ended[index] = ("diverged", message, step)
            elif reached_target(configs[r], val_accuracies[r]):
                ended[index] = ("completed", f"stopped at the target after epoch {epoch}", step)
        if len(ended) == k:
            return


def _noise_points(
    stack: StackedModel,
    replica: int,
    probe: NoiseProbe | None,
    data: Data,
    record: EpochRecord,
    config: RunConfig,
) -> tuple[NoiseScalePoint, ...]:
    """A replica's noise-scale measurements at the end of an epoch: when one is due by samples
    seen (stacked runs measure at epoch ends, not mid-epoch) and where it first reached the
    target. The probe works on the replica's own weights, as for a run trained alone."""
    if probe is None:
        return ()
    where = (float(record.epoch), record.steps, record.samples_seen, record.train_seconds)
    points = []
    model = None
    if record.samples_seen >= probe.next_due and probe.affordable(record.train_seconds):
        model = stack.unstacked(replica)
        points.append(probe.measure(model, data, where))
    if record.val_accuracy >= config.target_accuracy and not probe.reached:
        probe.reached = True
        model = model or stack.unstacked(replica)
        points.append(probe.measure(model, data, where, at_target=True))
    return tuple(points)
