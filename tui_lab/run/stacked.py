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

A stack is trained by the engine's one loop like any run: ``train_steps.StackedSteps`` is its
kind of step. Whether stacking pays depends on the device, batch size and the executor's slots
(``policy.plan_tasks``); each session records how many runs were stacked with it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from tui_lab.schema import CheckedModel, RunConfig

# Models without batch norm: its running statistics are updated in place, which vmap forbids.
STACKABLE_MODELS = {"lenet5", "mlp"}
# Optimizers whose state does not depend on the applied update: the change scales with the lr.
LR_SCALABLE = {"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw"}


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
