"""The real network's optimization path, seen in the plane that explains most of it.

Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", section 7): keep the weights
along training, take the top two principal directions of θ_i − θ_final, draw the path's
coordinates in that plane over contours of the loss at θ_final + a·d1 + b·d2.

The engine's side costs nothing between snapshots: it asks `recorder.wants(step)` and only then
copies the weights. At the end it calls `trajectory_sketch`, which projects and evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tui_lab.core.evaluation import LossFn, evaluate
from tui_lab.core.weights import flat_parameters, preserved_weights, set_flat_parameters
from tui_lab.schema.trajectory import TrajectorySketch

# Columns of the snapshot matrix handled at once: bounds the float64 working copy to
# k × 65,536 × 8 bytes (about 50 MB for k = 100) whatever the model size.
_CHUNK = 65_536
# Below this share of the variance a direction is rounding noise, not a direction of the path.
_NO_VARIANCE = 1e-10


class TrajectoryRecorder:
    """Flattened float32 CPU copies of the weights at evenly spread steps, in bounded memory.

    Memory: at most `max_snapshots × n_params × 4` bytes, e.g. 64 × 61,706 × 4 ≈ 16 MB for
    LeNet-5, 64 × 1M × 4 ≈ 256 MB for a 1M-parameter model. When the buffer fills, every other
    snapshot is dropped and the interval doubles, so the kept snapshots stay evenly spread from
    the first to the latest whatever the run length. Use::

        recorder = TrajectoryRecorder()
        for step in range(total_steps + 1):  # step = optimizer steps taken so far
            if recorder.wants(step):
                recorder.record(model, step)
            ...  # one optimizer step
    """

    def __init__(self, max_snapshots: int = 64, interval: int = 1) -> None:
        if max_snapshots < 4 or interval < 1:
            raise ValueError("need max_snapshots >= 4 and interval >= 1")
        self.max_snapshots = max_snapshots
        self.interval = interval
        self.steps: list[int] = []
        self._buffer: torch.Tensor | None = None
        self._next_step = 0

    def wants(self, step: int) -> bool:
        """Whether the engine should call `record` at this step (cheap: no tensor work)."""
        return step >= self._next_step

    def record(self, model: torch.nn.Module, step: int) -> None:
        self.record_flat(flat_parameters(model), step)

    def record_flat(self, flat: torch.Tensor, step: int) -> None:
        """Record weights already flattened (a replica of a stacked model has no module)."""
        if self._buffer is None:
            self._buffer = torch.empty(self.max_snapshots, flat.numel(), dtype=torch.float32)
        self._buffer[len(self.steps)].copy_(flat)
        self.steps.append(step)
        if len(self.steps) == self.max_snapshots:
            self._buffer[: (self.max_snapshots + 1) // 2] = self._buffer[::2].clone()
            self.steps = self.steps[::2]
            self.interval *= 2
        self._next_step = self.steps[-1] + self.interval

    def snapshots(self) -> torch.Tensor:
        """The kept snapshots, one per row of a [k, n_params] view (no copy)."""
        if self._buffer is None:
            return torch.empty(0, 0)
        return self._buffer[: len(self.steps)]


@dataclass(frozen=True)
class Projection:
    """The path in the plane of its top two principal directions; θ_final is the origin."""

    directions: torch.Tensor  # [2, p] orthonormal, float32
    coords: torch.Tensor  # [k, 2] float64: (θ_i − θ_final) · direction
    explained_variance: tuple[float, float]  # share of the path's variance per direction


def project_trajectory(snapshots: torch.Tensor, final: torch.Tensor, seed: int = 0) -> Projection:
    """PCA of the rows θ_i − θ_final (Li et al. 2018), without forming a p × p matrix.

    The eigenvectors u of the centred k × k Gram matrix give the directions D_cᵀu/√λ, and the
    coordinates come straight from the Gram matrix. Directions are oriented so that the first
    snapshot has non-positive coordinates (the path runs towards the origin). If the path spans
    fewer than two directions (a straight line), the missing one is a seeded random direction
    orthogonal to it, with explained variance 0.
    """
    k, p = snapshots.shape
    final = final.to(snapshots.device, torch.float32)
    gram = torch.zeros(k, k, dtype=torch.float64)
    for start in range(0, p, _CHUNK):
        offsets = _offsets(snapshots, final, start)
        gram += offsets @ offsets.T
    if not torch.isfinite(gram).all():
        raise ValueError("the weights are not finite: no trajectory to project")
    centre = torch.eye(k, dtype=torch.float64) - 1.0 / k
    eigenvalues, eigenvectors = torch.linalg.eigh(centre @ gram @ centre)
    total = eigenvalues.clamp(min=0).sum().item()
    top = [i for i in (k - 1, k - 2) if i >= 0 and eigenvalues[i] > _NO_VARIANCE * total]

    directions = torch.empty(2, p, dtype=torch.float32)
    scale = eigenvalues[top].sqrt()
    for start in range(0, p, _CHUNK):
        block = eigenvectors[:, top].T @ _offsets(snapshots, final, start) / scale[:, None]
        directions[: len(top), start : start + _CHUNK] = block.float()
    coords = torch.zeros(k, 2, dtype=torch.float64)
    coords[:, : len(top)] = gram @ eigenvectors[:, top] / scale
    if len(top) < 2:
        generator = torch.Generator().manual_seed(seed)
        for j in range(len(top), 2):
            directions[j] = _random_orthogonal(p, directions[:j], generator)
            coords[:, j] = _project(snapshots, final, directions[j])
    flip = torch.where(coords[0] > 0, -1.0, 1.0)
    ratios = [eigenvalues[i].item() / total if i in top else 0.0 for i in (k - 1, k - 2)]
    return Projection(
        directions=directions * flip[:, None].float(),
        coords=coords * flip,
        explained_variance=(ratios[0], ratios[1]),
    )


def _offsets(snapshots: torch.Tensor, final: torch.Tensor, start: int) -> torch.Tensor:
    """Columns [start, start + _CHUNK) of θ_i − θ_final, in float64."""
    cols = slice(start, start + _CHUNK)
    return snapshots[:, cols].double() - final[cols].double()


def _random_orthogonal(p: int, others: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    vector = torch.randn(p, generator=generator)
    for other in others:
        vector -= (vector @ other) * other
    return vector / vector.norm()


def _project(snapshots: torch.Tensor, final: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    coords = torch.zeros(snapshots.shape[0], dtype=torch.float64)
    for start in range(0, snapshots.shape[1], _CHUNK):
        coords += _offsets(snapshots, final, start) @ direction[start : start + _CHUNK].double()
    return coords


def grid_extent(coords: torch.Tensor, margin: float = 0.2) -> tuple[tuple[float, float], ...]:
    """((x_lo, x_hi), (y_lo, y_hi)) covering the path and the origin, with a margin.

    An axis along which the path barely moves still gets a tenth of the other axis's span,
    so that the grid shows the loss around the path rather than a sliver (and a path that never
    moved gets a unit square).
    """
    lo = coords.min(0).values.clamp(max=0)
    hi = coords.max(0).values.clamp(min=0)
    widest = (hi - lo).max().item()
    span = (hi - lo).clamp(min=0.1 * widest) if widest > 0 else torch.ones(2, dtype=lo.dtype)
    centre = (hi + lo) / 2
    half = span * (0.5 + margin)
    return tuple((c - h, c + h) for c, h in zip(centre.tolist(), half.tolist(), strict=True))


@dataclass(frozen=True)
class LossGrid:
    xs: torch.Tensor  # [nx] coefficients of direction 1
    ys: torch.Tensor  # [ny] coefficients of direction 2
    loss: torch.Tensor  # [ny, nx] loss at θ_final + xs[j]·d1 + ys[i]·d2, on the CPU


def loss_grid(
    model: torch.nn.Module,
    final: torch.Tensor,
    directions: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    extent: tuple[tuple[float, float], ...],
    resolution: int = 21,
    loss_fn: LossFn = F.cross_entropy,
) -> LossGrid:
    """The loss over a resolution × resolution grid in the plane through `final`.

    (x, y) is a fixed evaluation subset already on the model's device. The model is evaluated in
    eval mode under no_grad and its weights are restored afterwards, also on error. One host sync
    at the end. Cost: resolution² forward passes over the subset.
    """
    device = next(model.parameters()).device
    xs = torch.linspace(*extent[0], resolution, dtype=torch.float64)
    ys = torch.linspace(*extent[1], resolution, dtype=torch.float64)
    final = final.to(device, torch.float32)
    d1, d2 = directions.to(device, torch.float32)
    losses = torch.empty(resolution, resolution, device=device)
    with preserved_weights(model):
        for i, b in enumerate(ys.tolist()):
            for j, a in enumerate(xs.tolist()):
                set_flat_parameters(model, final + a * d1 + b * d2)
                losses[i, j] = evaluate(model, x, y, loss_fn)[0]
    return LossGrid(xs=xs, ys=ys, loss=losses.cpu())


def trajectory_sketch(
    model: torch.nn.Module,
    recorder: TrajectoryRecorder,
    step: int,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    resolution: int = 21,
    loss_fn: LossFn = F.cross_entropy,
) -> TrajectorySketch:
    """Project the recorded path (ending at the model's current weights, at `step`) and draw
    the loss grid around it: what the engine calls at the end of a run (or periodically).

    Raises ValueError if the weights are not finite (a diverged run has no sketch).
    """
    final = flat_parameters(model).to("cpu", torch.float32)
    snapshots, steps = recorder.snapshots(), list(recorder.steps)
    if not steps or steps[-1] != step:
        snapshots = torch.cat([snapshots.reshape(-1, final.numel()), final[None]])
        steps.append(step)
    projection = project_trajectory(snapshots, final)
    grid = loss_grid(
        model,
        final,
        projection.directions,
        x,
        y,
        extent=grid_extent(projection.coords),
        resolution=resolution,
        loss_fn=loss_fn,
    )
    loss = grid.loss
    finite = torch.isfinite(loss)
    worst = loss[finite].max().item() if finite.any() else 0.0
    return TrajectorySketch(
        steps=steps,
        path_x=projection.coords[:, 0].tolist(),
        path_y=projection.coords[:, 1].tolist(),
        explained_variance=projection.explained_variance,
        grid_x=grid.xs.tolist(),
        grid_y=grid.ys.tolist(),
        grid_loss=torch.where(finite, loss, worst).tolist(),
        eval_samples=len(x),
    )
