"""How one optimizer step is taken: eagerly, replayed from a captured CUDA graph, or for K
replicas at once as one stacked model (see stacked.py).

Small-batch steps on a GPU are bound by launching a few hundred tiny kernels from Python, not by
arithmetic. A CUDA graph records the whole step once (cut the batch by a device-side index,
forward, backward, optimizer step) and replays it with one launch. For that every tensor the step
touches must stay at the same address: the epoch's permutation is copied into a static buffer, the
batch's position is a device counter the step itself advances, and the loss is summed into a
device total. Steps a graph cannot take run eagerly on the same buffers, so nothing is skipped:
noise-scale measuring steps (two half-batch passes) and the epoch's last partial batch.

Every kind has one interface, so the engine's one epoch loop (and every instrument in it) treats
a stack as it treats a run alone: ``begin_epoch`` takes one permutation per replica, ``step(i)``
takes step i of the epoch, ``loss_sum`` holds each replica's summed loss on the device (read, one
host sync, only when the engine reports), ``replica(k)`` and ``flat(k)`` give replica k's weights
as a module and as a vector, and ``evaluate`` each replica's loss and accuracy on a split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tui_lab.core import evaluation
from tui_lab.core.optimizers import build_optimizer
from tui_lab.core.weights import flat_parameters
from tui_lab.run.policy import CAPTURE_STACKS_BY_DEFAULT, EVAL_CHUNK
from tui_lab.run.stacked import StackedModel, replica_losses
from tui_lab.schema import RunConfig

StepKind = Literal["eager", "cuda_graph", "stacked"]
# Eager steps before capture: autograd, cuBLAS and the optimizer's state are set up lazily, and
# none of that may happen inside a capture. These are real training steps.
WARMUP_STEPS = 3
# Optimizers that take `capturable=True` (their step counters stay on the device).
CAPTURABLE = {"rprop", "rmsprop", "adadelta", "adam", "adamw"}
# SGD keeps no host-side state, so its step is captured as it is.
CAPTURE_SAFE = {"sgd", "momentum", "nesterov"} | CAPTURABLE


def step_plan(configs: Sequence[RunConfig]) -> tuple[StepKind, str]:
    """Which kind of step a task uses, and why (the session's environment records both)."""
    if len(configs) > 1:
        why = f"{len(configs)} runs trained together as one stacked model"
        graphs, graphs_why = stack_graph_plan(configs[0])  # the runs differ only in seed and lr
        if graphs == "cuda_graph":
            return "stacked", f"{why}, its step captured once in a CUDA graph and replayed"
        return "stacked", f"{why} ({graphs_why})"
    return graph_plan(configs[0])


def stack_graph_plan(config: RunConfig) -> tuple[StepKind, str]:
    """Whether a stack's step is captured: as a run's would be, but (until measured on a GPU,
    see policy.CAPTURE_STACKS_BY_DEFAULT) only where the preset asks for cuda_graphs "on"."""
    kind, why = graph_plan(config)
    if kind == "cuda_graph" and config.cuda_graphs == "auto" and not CAPTURE_STACKS_BY_DEFAULT:
        return "eager", 'stacked steps are captured only with cuda_graphs "on"'
    return kind, why


def graph_plan(config: RunConfig) -> tuple[StepKind, str]:
    """Whether a run alone is captured in a CUDA graph, and why (or why not)."""
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
    """The plain step of one run: slice the permutation, gather the batch, backward, step."""

    kind: StepKind = "eager"
    replicas = 1

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
        self.model.train()
        self.x, self.y, self.batch, self.micro = x, y, batch, micro
        self.loss_sum = torch.zeros(1, device=x.device)
        self.order = torch.empty(0, dtype=torch.int64, device=x.device)

    def begin_epoch(self, orders: Tensor) -> None:
        """``orders``: one permutation of the training set per replica, [K, n]."""
        self.order = orders[0].to(self.x.device)
        self.loss_sum.zero_()

    def replica(self, k: int) -> nn.Module:
        return self.model

    def flat(self, k: int) -> Tensor:
        return flat_parameters(self.model)

    def evaluate(self, x: Tensor, y: Tensor) -> tuple[list[float], list[float]]:
        """Mean loss and accuracy on a whole split, in eval mode, in chunks to bound memory."""
        self.model.eval()
        loss, accuracy = evaluation.evaluate(self.model, x, y, batch_size=EVAL_CHUNK)
        self.model.train()
        return [loss.item()], [accuracy.item()]

    def step(self, i: int) -> None:
        """Step ``i`` of the epoch."""
        idx = self.order[i * self.batch : (i + 1) * self.batch]
        self._take(self.x[idx], self.y[idx])

    def _take(self, x: Tensor, y: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss = accumulate_gradient(self.model, x, y, self.micro)
        self.optimizer.step()
        self.loss_sum += loss


class CapturedStep:
    """A step body run eagerly for WARMUP_STEPS (on a side stream, as capture requires), then
    captured once in a CUDA graph and replayed. On a CPU the body simply runs every time, which
    is how the static-buffer arithmetic around it is tested without a GPU."""

    def __init__(self, body: Callable[[], None], optimizer: torch.optim.Optimizer, device) -> None:  # type: ignore[no-untyped-def]
        self.body, self.optimizer = body, optimizer
        self.capture = torch.device(device).type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
            return
        # Grads set to None: backward writes them afresh (inside the capture: in its pool).
        self.optimizer.zero_grad(set_to_none=True)
        if not self.capture:
            self.body()
        elif self.eager_steps < WARMUP_STEPS:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.body()
            torch.cuda.current_stream().wait_stream(side)
            self.eager_steps += 1
        else:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.body()
            self.graph = graph
            graph.replay()  # capturing records the step without running it


class GraphedSteps(EagerSteps):
    """Full batches from static buffers, captured in a CUDA graph after a few eager steps."""

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
        self.captured = CapturedStep(self._graphed_body, optimizer, device)

    def begin_epoch(self, orders: Tensor) -> None:
        self.order.copy_(orders[0])  # same buffer, same address: the graph reads it
        self.position.zero_()
        self.loss_sum.zero_()

    def step(self, i: int) -> None:
        if i >= self.full_steps:  # the last, partial batch: its own shape, taken eagerly
            idx = self.order[i * self.batch :]
            self._take(self.x[idx], self.y[idx])
            return
        self.captured()

    def _graphed_body(self) -> None:
        idx = self.order.index_select(0, self.position + self.offsets)
        x, y = self.x.index_select(0, idx), self.y.index_select(0, idx)
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.position += self.batch
        self.loss_sum += loss.detach()


class StackedSteps:
    """K replicas' steps as one: each replica cuts its own batch from its own permutation, one
    vmap-ed pass computes every replica's loss, and their sum's backward gives each replica its
    own gradient. The optimizer runs at the first replica's lr; each replica's change is then
    scaled by lr_k / lr_0 (exact for the optimizers stacked.LR_SCALABLE names)."""

    kind: StepKind = "stacked"

    def __init__(
        self,
        models: Sequence[nn.Module],
        configs: Sequence[RunConfig],
        x: Tensor,
        y: Tensor,
        capturable: bool = False,
    ) -> None:
        self.stack = StackedModel(models)
        self.replicas = len(models)
        self.params = list(self.stack.params.values())
        first = configs[0]
        self.optimizer = build_optimizer(
            self.params, first.optimizer, first.lr, capturable=capturable
        )
        self.ratios = torch.tensor([c.lr / first.lr for c in configs], device=x.device)
        self.scaled = bool((self.ratios != 1).any())
        self.x, self.y, self.batch = x, y, first.batch_size
        self.loss_sum = torch.zeros(self.replicas, device=x.device)
        self.orders = torch.empty(0, dtype=torch.int64, device=x.device)

    def begin_epoch(self, orders: Tensor) -> None:
        self.orders = orders.to(self.x.device)
        self.loss_sum.zero_()

    def step(self, i: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._take(self.orders[:, i * self.batch : (i + 1) * self.batch])

    def _take(self, idx: Tensor) -> None:
        """One step of every replica, replica k on samples ``idx[k]``."""
        loss = replica_losses(self.stack.logits(self.x[idx]), self.y[idx])
        loss.sum().backward()
        before = [p.detach().clone() for p in self.params] if self.scaled else []
        self.optimizer.step()
        if self.scaled:  # p = before + r (p - before)
            with torch.no_grad():
                for p, old in zip(self.params, before, strict=True):
                    r = self.ratios.view(-1, *([1] * (p.dim() - 1)))
                    p.mul_(r).add_(old.mul_(1 - r))
        self.loss_sum += loss.detach()

    def replica(self, k: int) -> nn.Module:
        return self.stack.unstacked(k)

    def flat(self, k: int) -> Tensor:
        return self.stack.flat(k)

    def evaluate(self, x: Tensor, y: Tensor) -> tuple[list[float], list[float]]:
        """Each replica's mean loss and accuracy over one split (one host sync)."""
        k = self.replicas
        loss_sum = torch.zeros(k, device=x.device)
        correct = torch.zeros(k, device=x.device)
        with torch.no_grad():
            for start in range(0, len(x), EVAL_CHUNK):
                inputs, targets = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
                logits = self.stack.shared_logits(inputs)
                expanded = targets.expand(k, -1)
                loss_sum += replica_losses(logits, expanded) * len(inputs)
                correct += (logits.argmax(2) == expanded).sum(1)
        losses, accuracies = torch.stack([loss_sum / len(x), correct / len(x)]).tolist()
        return losses, accuracies


class GraphedStackedSteps(StackedSteps):
    """The stacked step from static buffers (K permutations, a device-side position), captured
    in a CUDA graph: a stack's vmap-ed step launches several times the kernels of a run alone,
    so on a GPU it is launch-bound unless replayed as one graph (benchmarks/seeds.py)."""

    def __init__(
        self, models: Sequence[nn.Module], configs: Sequence[RunConfig], x: Tensor, y: Tensor
    ) -> None:
        super().__init__(models, configs, x, y, capturable=True)
        device = x.device
        self.orders = torch.zeros(self.replicas, len(y), dtype=torch.int64, device=device)
        self.position = torch.zeros((), dtype=torch.int64, device=device)
        self.offsets = torch.arange(self.batch, device=device)
        self.full_steps = len(y) // self.batch
        self.captured = CapturedStep(self._graphed_body, self.optimizer, device)

    def begin_epoch(self, orders: Tensor) -> None:
        self.orders.copy_(orders)  # same buffer, same address: the graph reads it
        self.position.zero_()
        self.loss_sum.zero_()

    def step(self, i: int) -> None:
        if i >= self.full_steps:  # the last, partial batch: taken eagerly
            super().step(i)
            return
        self.captured()

    def _graphed_body(self) -> None:
        self._take(self.orders.index_select(1, self.position + self.offsets))
        self.position += self.batch


Steps = EagerSteps | StackedSteps


def train_steps(
    kind: StepKind, models: Sequence[nn.Module], configs: Sequence[RunConfig], x: Tensor, y: Tensor
) -> Steps:
    """The step-taker for the plan's kind, with its optimizer."""
    if kind == "stacked":
        graphed = stack_graph_plan(configs[0])[0] == "cuda_graph"
        return (GraphedStackedSteps if graphed else StackedSteps)(models, configs, x, y)
    (model,), (config,) = models, configs
    optimizer = build_optimizer(
        model.parameters(), config.optimizer, config.lr, capturable=kind == "cuda_graph"
    )
    if kind == "cuda_graph":
        return GraphedSteps(model, optimizer, x, y, config.batch_size)
    return EagerSteps(model, optimizer, x, y, config.batch_size, config.micro_batch_size)
