"""How one optimizer step is taken: eagerly, or replayed from a captured CUDA graph.

Small-batch steps on a GPU are bound by launching a few hundred tiny kernels from Python, not by
arithmetic. A CUDA graph records the whole step once (cut the batch by a device-side index,
forward, backward, optimizer step) and replays it with one launch. For that every tensor the step
touches must stay at the same address: the epoch's permutation is copied into a static buffer, the
batch's position is a device counter the step itself advances, and the loss is summed into a
device total. Steps a graph cannot take run eagerly on the same buffers, so nothing is skipped:
noise-scale measuring steps (two half-batch passes) and the epoch's last partial batch.

Both kinds sum the epoch's losses on the device; the engine reads the total (one host sync) only
when it reports.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tui_lab.schema import RunConfig

StepKind = Literal["eager", "cuda_graph"]
# Eager steps before capture: autograd, cuBLAS and the optimizer's state are set up lazily, and
# none of that may happen inside a capture. These are real training steps.
WARMUP_STEPS = 3
# Optimizers that take `capturable=True` (their step counters stay on the device).
CAPTURABLE = {"rprop", "rmsprop", "adadelta", "adam", "adamw"}
# SGD keeps no host-side state, so its step is captured as it is.
CAPTURE_SAFE = {"sgd", "momentum", "nesterov"} | CAPTURABLE


def graph_plan(config: RunConfig) -> tuple[StepKind, str]:
    """Which kind of step this run uses, and why (the session's environment records both)."""
    if config.cuda_graphs == "off":
        return "eager", "cuda_graphs is off"
    reasons = []
    if not config.device.startswith("cuda"):
        reasons.append(f"CUDA graphs need a CUDA device, not {config.device}")
    if config.optimizer.name not in CAPTURE_SAFE:
        reasons.append(f"{config.optimizer.name} cannot run inside a CUDA graph")
    if config.micro_batch_size is not None:
        reasons.append("micro-batching takes a variable number of passes per step")
    if config.lr_scaling.warmup_epochs > 0:
        reasons.append("lr warm-up changes the learning rate on every step")
    if reasons:
        return "eager", "; ".join(reasons)
    return "cuda_graph", "captured once, replayed every full batch"


def accumulate_gradient(model: nn.Module, x: Tensor, y: Tensor, micro: int | None = None) -> Tensor:
    """Backward the batch's mean loss, in micro-batches if asked; returns the loss (on device).

    Each micro-batch's loss is weighted by its share of the batch, so the accumulated gradient
    equals the gradient of one pass over the whole batch.
    """
    if micro is None or micro >= len(y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach()
    total = torch.zeros((), device=x.device)
    for xs, ys in zip(x.split(micro), y.split(micro), strict=True):
        loss = F.cross_entropy(model(xs), ys) * (len(ys) / len(y))
        loss.backward()
        total += loss.detach()
    return total


class EagerSteps:
    """The plain step: slice the permutation, gather the batch, backward, step."""

    kind: StepKind = "eager"

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        x: Tensor,
        y: Tensor,
        batch: int,
        micro: int | None,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.x, self.y, self.batch, self.micro = x, y, batch, micro
        self.loss_sum = torch.zeros((), device=x.device)
        self.order = torch.empty(0, dtype=torch.int64, device=x.device)

    def begin_epoch(self, order: Tensor) -> None:
        self.order = order.to(self.x.device)
        self.loss_sum.zero_()

    def step(self, i: int) -> None:
        """Step ``i`` of the epoch."""
        idx = self.order[i * self.batch : (i + 1) * self.batch]
        self._take(self.x[idx], self.y[idx])

    def _take(self, x: Tensor, y: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss = accumulate_gradient(self.model, x, y, self.micro)
        self.optimizer.step()
        self.loss_sum += loss


class GraphedSteps(EagerSteps):
    """Full batches from static buffers, captured in a CUDA graph after a few eager steps.

    On a CPU nothing is captured and the same static-buffer step runs eagerly, which is how the
    buffer arithmetic is tested without a GPU.
    """

    kind: StepKind = "cuda_graph"

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        x: Tensor,
        y: Tensor,
        batch: int,
    ) -> None:
        super().__init__(model, optimizer, x, y, batch, None)
        device = x.device
        self.order = torch.zeros(len(y), dtype=torch.int64, device=device)
        self.position = torch.zeros((), dtype=torch.int64, device=device)
        self.offsets = torch.arange(batch, device=device)
        self.full_steps = len(y) // batch
        self.capture = device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0

    def begin_epoch(self, order: Tensor) -> None:
        self.order.copy_(order)  # same buffer, same address: the graph reads it
        self.position.zero_()
        self.loss_sum.zero_()

    def step(self, i: int) -> None:
        if i >= self.full_steps:  # the last, partial batch: its own shape, taken eagerly
            idx = self.order[i * self.batch :]
            self._take(self.x[idx], self.y[idx])
            return
        if self.graph is not None:
            self.graph.replay()
        elif not self.capture or self.eager_steps < WARMUP_STEPS:
            self._warm_up()
        else:
            self._capture()
            self.graph.replay()  # capturing records the step without running it

    def _batch(self) -> tuple[Tensor, Tensor]:
        idx = self.order.index_select(0, self.position + self.offsets)
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def _graphed_body(self) -> None:
        """The captured work; grads were set to None before, so backward writes them afresh."""
        x, y = self._batch()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.position += self.batch
        self.loss_sum += loss.detach()

    def _warm_up(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if not self.capture:
            self._graphed_body()
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._graphed_body()
        torch.cuda.current_stream().wait_stream(side)
        self.eager_steps += 1

    def _capture(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._graphed_body()
        self.graph = graph


def train_steps(
    kind: StepKind,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    config: RunConfig,
) -> EagerSteps:
    """The step-taker for the plan's kind."""
    if kind == "cuda_graph":
        return GraphedSteps(model, optimizer, x, y, config.batch_size)
    return EagerSteps(model, optimizer, x, y, config.batch_size, config.micro_batch_size)
