"""The paraboloid lab: the surface is where the maths says, and the paths show the brief's ideas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from tui_lab.analysis.paraboloid import (
    batch_gradients,
    make_problem,
    run_paraboloid,
    run_path,
    select_paths,
    start_point,
)
from tui_lab.report.contour import contour_points
from tui_lab.report.paraboloid import render_paraboloid
from tui_lab.schema.paraboloid import ParaboloidPreset, ParaboloidSession


def preset(**fields: object) -> ParaboloidPreset:
    return ParaboloidPreset.model_validate({"kind": "paraboloid", **fields})


@pytest.fixture(scope="module")
def default_session() -> ParaboloidSession:
    return run_paraboloid(preset())


def path_of(session: ParaboloidSession, optimizer: str, batch_size: int | str):
    (path,) = select_paths(session, optimizers=[optimizer], batch_sizes=[batch_size])
    return path


def settled_distance(session: ParaboloidSession, optimizer: str, batch_size: int | str) -> float:
    """Mean distance to the minimum over the last quarter of the path: where it hovers."""
    path = path_of(session, optimizer, batch_size)
    points = np.array([path.w1, path.w2]).T[-len(path.w1) // 4 :]
    return float(np.linalg.norm(points - np.array(session.minimum), axis=1).mean())


def test_kind_alone_is_a_valid_preset_and_kind_is_required() -> None:
    assert preset().optimizer_grid()[0].lr == 0.5
    with pytest.raises(ValidationError, match="kind"):
        ParaboloidPreset.model_validate({})


def test_only_elementwise_optimizers_are_offered() -> None:
    with pytest.raises(ValidationError, match="'adadelta' is not offered in the paraboloid lab"):
        preset(optimizers=[{"name": "adadelta"}])


def test_too_many_steps_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="batch size 1 takes 200000 steps"):
        preset(n_samples=2000, epochs=100)


@pytest.mark.parametrize("condition_number", [1.0, 20.0, 500.0])
def test_hessian_has_the_requested_condition_number_and_tilt(condition_number: float) -> None:
    problem = make_problem(preset(condition_number=condition_number, rotation_degrees=35))
    eigenvalues, eigenvectors = np.linalg.eigh(problem.hessian)
    assert eigenvalues[1] == pytest.approx(1.0)
    assert eigenvalues[1] / eigenvalues[0] == pytest.approx(condition_number)
    if condition_number > 1:
        long_axis = eigenvectors[:, 0]
        angle = math.degrees(math.atan2(long_axis[1], long_axis[0])) % 180
        assert angle == pytest.approx(35)


def test_minimum_is_the_least_squares_solution_and_the_gradient_vanishes_there() -> None:
    problem = make_problem(preset(noise=2.0, seed=3))
    solution = np.linalg.lstsq(problem.inputs, problem.targets, rcond=None)[0]
    assert problem.minimum == pytest.approx(solution)
    assert np.abs(problem.gradient(problem.minimum)).max() < 1e-12
    loss_at = problem.loss(*problem.minimum)
    mean_square = 0.5 * np.mean((problem.inputs @ solution - problem.targets) ** 2)
    assert loss_at == pytest.approx(mean_square)
    for step in ([0.01, 0], [0, 0.01], [-0.01, 0.01]):
        assert problem.loss(*(problem.minimum + step)) > loss_at


def test_grid_is_the_loss_and_its_lowest_point_is_next_to_the_minimum(
    default_session: ParaboloidSession,
) -> None:
    problem = make_problem(default_session.preset)
    grid = default_session.grid
    w1, w2 = np.array(grid.w1), np.array(grid.w2)
    loss = np.array(grid.loss)
    assert loss == pytest.approx(problem.loss(w1[None, :], w2[:, None]), rel=1e-3)
    row, column = np.unravel_index(loss.argmin(), loss.shape)
    assert abs(w1[column] - default_session.minimum[0]) <= w1[1] - w1[0]
    assert abs(w2[row] - default_session.minimum[1]) <= w2[1] - w2[0]
    assert default_session.minimum == pytest.approx(tuple(problem.minimum), rel=1e-4)


def test_contour_dots_are_on_the_ellipses_of_their_level(
    default_session: ParaboloidSession,
) -> None:
    problem = make_problem(default_session.preset)
    grid = default_session.grid
    w1, w2 = np.array(grid.w1), np.array(grid.w2)
    h1, h2 = w1[1] - w1[0], w2[1] - w2[0]
    # Linear interpolation of a quadratic along an edge errs by at most curvature × h² / 8.
    tolerance = (problem.hessian[0, 0] * h1**2 + problem.hessian[1, 1] * h2**2) / 8
    for level in grid.levels:
        p1, p2 = contour_points(w1, w2, np.array(grid.loss), level)
        assert p1.size > 10
        assert np.abs(problem.loss(p1, p2) - level).max() <= tolerance + 1e-4 * level


def test_outer_ring_passes_through_the_start(default_session: ParaboloidSession) -> None:
    problem = make_problem(default_session.preset)
    start = start_point(default_session.preset, problem)
    assert default_session.grid.levels[-1] == pytest.approx(problem.loss(*start), rel=1e-4)


def test_every_path_starts_at_the_start_point(default_session: ParaboloidSession) -> None:
    expected = start_point(default_session.preset, make_problem(default_session.preset))
    assert len(default_session.paths) == 5 * 4
    for path in default_session.paths:
        assert (path.w1[0], path.w2[0]) == pytest.approx(tuple(expected), rel=1e-4)
    custom = run_paraboloid(preset(start=(-2.0, 3.0), epochs=2, batch_sizes=[4, "full"]))
    assert {(p.w1[0], p.w2[0]) for p in custom.paths} == {(-2.0, 3.0)}


def test_paths_are_bounded_but_keep_their_last_step(default_session: ParaboloidSession) -> None:
    batch_one = path_of(default_session, "sgd", 1)
    assert batch_one.steps == 32 * 40
    assert len(batch_one.w1) <= 400 and batch_one.step[-1] == batch_one.steps
    end = np.array([batch_one.w1[-1], batch_one.w2[-1]])
    distance = np.linalg.norm(end - np.array(default_session.minimum))
    assert distance == pytest.approx(batch_one.distance_to_minimum, rel=1e-3)


def test_full_batch_gradient_descent_converges_to_the_minimum() -> None:
    session = run_paraboloid(
        preset(optimizers=[{"name": "sgd", "lr": 0.9}], batch_sizes=["full"], epochs=400)
    )
    (path,) = session.paths
    assert path.distance_to_minimum < 1e-4
    assert path.final_loss == pytest.approx(session.minimum_loss, rel=1e-4)


def test_batch_size_one_keeps_zig_zagging_where_the_full_batch_settles() -> None:
    session = run_paraboloid(
        preset(optimizers=[{"name": "sgd"}], batch_sizes=[1, 8, "full"], epochs=300)
    )
    online, mini, full = (settled_distance(session, "sgd", b) for b in (1, 8, "full"))
    assert path_of(session, "sgd", "full").distance_to_minimum < 1e-2
    assert online > 0.1, "batch size 1 hovers at a noise floor"
    assert online > 2 * mini > 2 * full, "larger batches hover closer"


def test_mini_batch_paths_approach_the_full_batch_path() -> None:
    """Step for step, a larger batch strays less from the full-batch path."""
    settings = preset()
    problem = make_problem(settings)
    start = start_point(settings, problem)
    (sgd,) = (c for c in settings.optimizer_grid() if c.name == "sgd")

    def trace(batch_size: int) -> np.ndarray:
        steps = batch_gradients(problem, batch_size, settings.epochs, settings.seed)
        return run_path(problem, sgd, *steps, start)[0]

    full = trace(settings.n_samples)
    strays = [np.linalg.norm(trace(b)[: len(full)] - full, axis=1).mean() for b in (1, 4, 16)]
    assert strays[0] > 2 * strays[1] > 4 * strays[2]


def test_rprop_works_with_the_full_batch_and_breaks_with_small_ones(
    default_session: ParaboloidSession,
) -> None:
    start_distance = np.linalg.norm(
        np.array([default_session.paths[0].w1[0], default_session.paths[0].w2[0]])
        - np.array(default_session.minimum)
    )
    assert path_of(default_session, "rprop", "full").distance_to_minimum < 0.1
    assert path_of(default_session, "rprop", 1).distance_to_minimum > 0.5 * start_distance
    assert path_of(default_session, "rmsprop", 1).distance_to_minimum < 0.3, "RMSprop copes"


def test_a_too_large_learning_rate_is_reported_as_diverged() -> None:
    session = run_paraboloid(
        preset(optimizers=[{"name": "sgd", "lr": 5.0}], batch_sizes=["full"], epochs=300)
    )
    (path,) = session.paths
    assert path.diverged
    assert ParaboloidSession.model_validate_json(session.model_dump_json()) == session


def test_session_round_trips_through_json_and_stays_small(
    default_session: ParaboloidSession,
) -> None:
    text = default_session.model_dump_json()
    assert ParaboloidSession.model_validate_json(text) == default_session
    assert len(text) < 200_000


def test_render_shows_the_selected_paths_in_the_legend(
    default_session: ParaboloidSession,
) -> None:
    paths = select_paths(default_session, optimizers=["rprop"])
    text = render_paraboloid(default_session, paths, width=100, height=30, color=False)
    assert [p.label for p in paths] == [f"rprop lr=0.05 b={b}" for b in (1, 4, 16, "full")]
    for path in paths:
        assert path.label in text
    assert "sgd" not in text
