"""Loss and accuracy of a model over a whole split: what epochs, sketches and the 1-D plot share."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # mean loss over a batch


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy (0-d tensors on the model's device, no host sync) over (x, y).

    `loss_fn` returns the mean over a batch. Batched so that memory stays bounded. The caller
    chooses the model's mode (eval for metrics, as it is inside `weights.preserved_weights`).
    """
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            inputs, targets = x[start : start + batch_size], y[start : start + batch_size]
            outputs = model(inputs)
            loss_sum += loss_fn(outputs, targets).float() * len(inputs)
            correct += (outputs.argmax(1) == targets).sum()
    return loss_sum / len(x), correct / len(x)
