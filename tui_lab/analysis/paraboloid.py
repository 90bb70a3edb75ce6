"""The paraboloid lab: a linear neuron with two weights, trained by real torch optimizers.

With squared error the loss L(w) = ½·mean((Xw − y)²) is exactly a quadratic bowl whose
Hessian is H = XᵀX/n, so the contours are ellipses whose axes and elongation we choose by
building X. Each optimizer runs on a 2-element parameter with the real ``torch.optim`` class,
so the paths show what those optimizers really do. The gradient is linear in w, so each
batch's gradient is ``A_b·w − c_b`` with ``A_b``, ``c_b`` computed up front in numpy, and the
step loop does one small matrix-vector product plus the optimizer's own step.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch

from tui_lab.analysis.downsample import thin
from tui_lab.core.optimizers import build_optimizer
from tui_lab.schema.common import BatchSize
from tui_lab.schema.paraboloid import (
    ParaboloidGrid,
    ParaboloidPath,
    ParaboloidPreset,
    ParaboloidSession,
)
from tui_lab.schema.train import OptimizerConfig

TRUE_WEIGHTS = np.array([1.0, 1.0])
# A path that gets this many times its start distance (+1) from the minimum has diverged.
DIVERGED_DISTANCE = 1e3
# The loss of a diverged path can overflow; capped so that the session stays valid JSON.
MAX_REPORTED = 1e300
CONTOUR_RINGS = 8


@dataclass(frozen=True)
class LinearProblem:
    """Inputs and targets of the synthetic regression, with the exact quadratic they define."""

    inputs: np.ndarray  # (n, 2)
    targets: np.ndarray  # (n,)
    hessian: np.ndarray  # XᵀX/n
    moment: np.ndarray  # Xᵀy/n
    mean_square_target: float
    minimum: np.ndarray  # least-squares solution
    axes: np.ndarray  # columns: unit vectors of the steep axis and of the long (shallow) one

    def loss(self, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
        """L at the points (w1, w2), any broadcastable shapes: ½(wᵀHw − 2wᵀb + mean y²)."""
        h, b = self.hessian, self.moment
        quadratic = h[0, 0] * w1 * w1 + 2 * h[0, 1] * w1 * w2 + h[1, 1] * w2 * w2
        return 0.5 * (quadratic - 2 * (b[0] * w1 + b[1] * w2) + self.mean_square_target)

    def gradient(self, w: np.ndarray) -> np.ndarray:
        return self.hessian @ w - self.moment


def make_problem(preset: ParaboloidPreset) -> LinearProblem:
    """Inputs whose Hessian has curvature 1 across the valley and 1/κ along it.

    Rows start as points on a circle of radius √2 at random angles (so every sample's own
    curvature |x|² stays ≤ 2: batch size 1 is noisy but not explosive at the default lr),
    are whitened exactly (mean xxᵀ = I), then stretched and turned so that the ellipses'
    long axis makes the preset's angle with the w1 axis.
    """
    rng = np.random.default_rng(preset.seed)
    angles = rng.uniform(0, 2 * math.pi, preset.n_samples)
    circle = math.sqrt(2) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    whitening = np.linalg.cholesky(circle.T @ circle / preset.n_samples)
    white = np.linalg.solve(whitening, circle.T).T
    theta = math.radians(preset.rotation_degrees)
    long_axis = np.array([math.cos(theta), math.sin(theta)])
    steep_axis = np.array([-math.sin(theta), math.cos(theta)])
    axes = np.stack([steep_axis, long_axis], axis=1)
    scales = np.sqrt([1.0, 1.0 / preset.condition_number])
    inputs = white @ np.diag(scales) @ axes.T
    targets = inputs @ TRUE_WEIGHTS + preset.noise * rng.standard_normal(preset.n_samples)
    hessian = inputs.T @ inputs / preset.n_samples
    moment = inputs.T @ targets / preset.n_samples
    return LinearProblem(
        inputs=inputs,
        targets=targets,
        hessian=hessian,
        moment=moment,
        mean_square_target=float(np.mean(targets**2)),
        minimum=np.linalg.lstsq(inputs, targets, rcond=None)[0],
        axes=axes,
    )


def start_point(preset: ParaboloidPreset, problem: LinearProblem) -> np.ndarray:
    """The preset's start, or by default 3 units out along the long axis, a little off it.

    Off the axis so that the steep direction has something to zig-zag across; on the right
    of the minimum, away from the legend plotext puts top left.
    """
    if preset.start is not None:
        return np.array(preset.start, dtype=float)
    steep, long = problem.axes[:, 0], problem.axes[:, 1]
    return TRUE_WEIGHTS + 3.0 * long * (1 if long[0] >= 0 else -1) - 0.6 * steep


def batch_gradients(
    problem: LinearProblem, batch_size: int, epochs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(A, c) per step, so that step k's gradient is A[k]·w − c[k] on its batch.

    Each epoch cuts batches from a fresh permutation; the seed depends only on the preset's
    seed and the batch size, so every optimizer sees the same batches at a given batch size.
    """
    x, y = problem.inputs, problem.targets
    n = len(y)
    per_sample_a = x[:, :, None] * x[:, None, :]
    per_sample_c = x * y[:, None]
    starts = np.arange(0, n, batch_size)
    counts = np.diff(np.append(starts, n))
    rng = np.random.default_rng([seed, batch_size])
    a_steps, c_steps = [], []
    for _ in range(epochs):
        order = rng.permutation(n)
        a_steps.append(np.add.reduceat(per_sample_a[order], starts) / counts[:, None, None])
        c_steps.append(np.add.reduceat(per_sample_c[order], starts) / counts[:, None])
    return np.concatenate(a_steps), np.concatenate(c_steps)


def run_path(
    problem: LinearProblem,
    config: OptimizerConfig,
    a_steps: np.ndarray,
    c_steps: np.ndarray,
    start: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """Weights after every step (row 0 is the start), and whether the run diverged.

    A diverged path ends at its first point past the divergence limit, so it stays finite.
    """
    weights = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    weights.grad = torch.zeros_like(weights)
    optimizer = build_optimizer([weights], config, config.lr)
    for group in optimizer.param_groups:
        # Same maths; saves torch choosing an implementation on every one of the tiny steps.
        group["foreach"] = False
    trace = torch.empty(len(a_steps) + 1, 2, dtype=torch.float64)
    trace[0] = weights.detach()
    limit = DIVERGED_DISTANCE * (1.0 + float(np.linalg.norm(start - problem.minimum)))
    centre = torch.from_numpy(problem.minimum)
    a_list = torch.from_numpy(a_steps).unbind(0)
    c_list = torch.from_numpy(c_steps).unbind(0)
    taken = len(a_steps)
    with torch.no_grad():
        for step, (a, c) in enumerate(zip(a_list, c_list, strict=True), start=1):
            torch.addmv(c, a, weights, beta=-1, out=weights.grad)
            optimizer.step()
            trace[step] = weights
            # A norm check each step would cost as much as the step; every 64 is enough.
            if step % 64 == 0 and not float((weights - centre).norm()) < limit:
                taken = step
                break
    points = trace[: taken + 1].numpy()
    beyond = np.flatnonzero(~(np.hypot(*(points - problem.minimum).T) < limit))
    if beyond.size == 0:
        return points, False
    first = beyond[0]
    return points[: first + 1 if np.isfinite(points[first]).all() else first], True


def path_label(config: OptimizerConfig, batch_size: BatchSize) -> str:
    return f"{config.name} lr={config.lr:g} b={batch_size}"


def loss_grid(
    problem: LinearProblem, start: np.ndarray, points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid framing the whole contour ellipse through the start point, with a margin.

    The ellipse (w − w*)ᵀH(w − w*) = 2ΔL reaches ±√(2ΔL·(H⁻¹)ᵢᵢ) along axis i, so every
    ring inside it is drawn closed, and a descending path never leaves the frame.
    """
    rise = max(float(problem.loss(*start) - problem.loss(*problem.minimum)), 1e-6)
    reach = 1.15 * np.sqrt(2 * rise * np.diag(np.linalg.inv(problem.hessian)))
    w1 = problem.minimum[0] + np.linspace(-reach[0], reach[0], points)
    w2 = problem.minimum[1] + np.linspace(-reach[1], reach[1], points)
    return w1, w2, problem.loss(w1[None, :], w2[:, None])


def ring_levels(
    problem: LinearProblem, start: np.ndarray, count: int = CONTOUR_RINGS
) -> list[float]:
    """Loss levels whose ellipses shrink geometrically from the start's ring to a tenth of it."""
    bottom = float(problem.loss(*problem.minimum))
    rise = float(problem.loss(*start)) - bottom
    return (bottom + rise * np.geomspace(0.01, 1.0, count)).tolist()


def run_paraboloid(preset: ParaboloidPreset) -> ParaboloidSession:
    """Build the problem, run every optimizer at every batch size from one start point."""
    began = time.perf_counter()
    problem = make_problem(preset)
    start = start_point(preset, problem)
    n = preset.n_samples
    paths = []
    for batch in preset.batch_sizes:
        size = n if batch == "full" else min(batch, n)
        a_steps, c_steps = batch_gradients(problem, size, preset.epochs, preset.seed)
        for config in preset.optimizer_grid():
            trace, diverged = run_path(problem, config, a_steps, c_steps, start)
            kept = np.array(thin(range(len(trace)), preset.path_points), dtype=int)
            final = trace[-1]
            with np.errstate(over="ignore"):  # a diverged path's loss may overflow: capped
                final_loss = min(float(problem.loss(*final)), MAX_REPORTED)
            paths.append(
                ParaboloidPath(
                    label=path_label(config, batch),
                    optimizer=config,
                    batch_size=batch,
                    steps=len(trace) - 1,
                    step=kept.tolist(),
                    w1=trace[kept, 0].tolist(),
                    w2=trace[kept, 1].tolist(),
                    final_loss=final_loss,
                    distance_to_minimum=float(np.hypot(*(final - problem.minimum))),
                    diverged=diverged,
                )
            )
    w1, w2, loss = loss_grid(problem, start, preset.grid_points)
    curvatures = np.linalg.eigvalsh(problem.hessian)[::-1]
    return ParaboloidSession(
        id=f"paraboloid-{uuid.uuid4().hex[:8]}",
        created=datetime.now(timezone.utc),
        preset=preset,
        minimum=(float(problem.minimum[0]), float(problem.minimum[1])),
        minimum_loss=float(problem.loss(problem.minimum[0], problem.minimum[1])),
        curvatures=(float(curvatures[0]), float(curvatures[1])),
        grid=ParaboloidGrid(
            w1=w1.tolist(), w2=w2.tolist(), loss=loss.tolist(), levels=ring_levels(problem, start)
        ),
        paths=paths,
        compute_seconds=time.perf_counter() - began,
    )


def select_paths(
    session: ParaboloidSession,
    optimizers: Collection[str] | None = None,
    batch_sizes: Collection[BatchSize] | None = None,
) -> list[ParaboloidPath]:
    """The session's paths, keeping only the given optimizer names and batch sizes if any."""
    return [
        p
        for p in session.paths
        if (optimizers is None or p.optimizer.name in optimizers)
        and (batch_sizes is None or p.batch_size in batch_sizes)
    ]
