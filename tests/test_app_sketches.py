"""The paraboloid lab and the sketches screen, driven with the keyboard as a user over SSH would."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from factories import PAIR, SMALL_LAB, CompareHost, Host, make_session, sketched, wait_until
from textual.app import App
from textual.widgets import ContentSwitcher, Input, Static

from tui_lab.app.screens.paraboloid import ParaboloidScreen, ladder_step, next_batch_size
from tui_lab.app.screens.sketches import SketchesScreen, SketchPlot
from tui_lab.core.storage import LoadedSession, load_any_session, load_sessions, save_model
from tui_lab.schema import (
    Interpolation,
    ParaboloidSession,
)


def run(scenario) -> None:
    asyncio.run(scenario())


def lab_drawn(app: App) -> bool:
    """The plot shows the lab's current settings, not an older request's."""
    screen = app.screen
    return screen.session is not None and screen.session.preset == screen.preset


def readout(app: App) -> str:
    return str(app.screen.query_one("#readout", Static).render())


# The paraboloid lab


def test_step_keys_change_the_lab_and_the_paths_redraw(tmp_path: Path):
    async def scenario():
        app = Host(lambda: ParaboloidScreen(SMALL_LAB, out_dir=tmp_path))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: lab_drawn(app))
            screen, plot = app.screen, app.screen.query_one("#lab-plot", SketchPlot)
            assert "sgd 0.5" in readout(app) and "rprop 0.05" in readout(app)
            drawn = plot.generation

            await pilot.press("b", "right_square_bracket", "c", "n", "E")
            await wait_until(pilot, lambda: lab_drawn(app))
            preset = screen.preset
            assert preset.batch_sizes == [16] and preset.condition_number == 50
            assert (preset.noise, preset.epochs) == (1, 5)
            assert "sgd 0.75" in readout(app) and "after 5 epochs" in readout(app)
            assert plot.generation > drawn
            assert screen.query_one("#batch-sizes", Input).value == "16"

            await pilot.press("3", "2")  # rprop off, momentum on
            await wait_until(pilot, lambda: lab_drawn(app))
            assert [p.optimizer.name for p in screen.session.paths] == ["sgd", "momentum"]
            await pilot.press("2", "1")  # sgd alone is left: it cannot go too
            assert any("at least one optimizer" in note for note in app.notes)
            assert [c.name for c in screen.preset.optimizers] == ["sgd"]

            await pilot.press("r")
            await wait_until(pilot, lambda: lab_drawn(app))
            assert screen.preset == SMALL_LAB and "rprop 0.05" in readout(app)

    run(scenario)


def test_typed_values_apply_on_enter_and_bad_ones_are_explained(tmp_path: Path):
    async def scenario():
        app = Host(lambda: ParaboloidScreen(SMALL_LAB, out_dir=tmp_path))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: lab_drawn(app))
            screen = app.screen
            screen.query_one("#batch-sizes", Input).focus()
            await pilot.press(*"1,full", "enter")
            assert screen.focused.id == "lab-plot"  # the step keys work again at once
            await wait_until(pilot, lambda: lab_drawn(app))
            assert screen.preset.batch_sizes == [1, "full"]
            assert "sgd 0.5 b=1" in readout(app) and "rprop 0.05 b=full" in readout(app)

            screen.query_one("#condition", Input).focus()
            await pilot.press("0", "enter")
            assert any("condition_number" in note for note in app.notes)
            assert screen.preset.condition_number == 20
            assert screen.query_one("#condition", Input).value == "20"

            screen.query_one("#epochs", Input).focus()
            await pilot.press("7", "escape")  # changed my mind
            assert screen.focused.id == "lab-plot" and screen.preset.epochs == 10

    run(scenario)


def test_the_newest_request_wins_and_s_saves_what_is_shown(tmp_path: Path):
    async def scenario():
        app = Host(lambda: ParaboloidScreen(SMALL_LAB, out_dir=tmp_path))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press(
                "right_square_bracket", "right_square_bracket", "right_square_bracket"
            )
            await wait_until(pilot, lambda: lab_drawn(app))
            assert math.isclose(app.screen.session.paths[0].optimizer.lr, 0.5 * 1.5**3)
            await pilot.press("s")
            (saved,) = tmp_path.glob("*.json")
            session = load_any_session(saved)
            assert isinstance(session, ParaboloidSession)
            assert session.preset == app.screen.preset
            assert any(saved.name in note for note in app.notes)

    run(scenario)


def test_step_ladders_go_round_and_stop_at_the_ends():
    assert ladder_step(20, (1, 10, 20, 50), up=True) == 50
    assert ladder_step(30, (1, 10, 20, 50), up=False) == 20  # a typed value snaps to a rung
    assert ladder_step(50, (1, 10, 20, 50), up=True) == 50
    assert ladder_step(0, (0, 0.5), up=False) == 0
    assert next_batch_size(["full"], up=True) == 1
    assert next_batch_size([1, 16], up=False) == "full"
    assert next_batch_size([7], up=True) == 1


# Trajectory sketches and the line between two runs


def test_sketches_are_titled_and_only_a_pair_can_be_interpolated():
    three = [*PAIR, sketched(make_session(64, "adam"))]

    async def scenario():
        app = Host(lambda: SketchesScreen(three))
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            titles = [str(plot.border_title) for plot in app.screen.query(SketchPlot)][:3]
            assert titles[0].startswith("sgd b=8 · acc ") and "PCA 81%+12%" in titles[0]
            assert titles[2].startswith("adam b=64")
            await pilot.press("i")  # three runs: it says, where the user looks, what i needs
            assert app.screen.query_one(ContentSwitcher).current == "sketches-view"
            hint = str(app.screen.query_one("#sketch-hint").render())
            assert "exactly two runs; 3 are shown" in hint

    run(scenario)


def test_runs_of_different_models_are_not_interpolated():
    other_model = sketched(make_session(1024))
    other_model.session.config.model = "mlp"

    async def scenario():
        app = Host(lambda: SketchesScreen([PAIR[0], other_model]))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("i")
            assert "same model on the same data" in str(
                app.screen.query_one("#sketch-hint").render()
            )
            assert app.screen.query_one(ContentSwitcher).current == "sketches-view"

    run(scenario)


@pytest.fixture(scope="module")
def trained_pair(trained_pair_dir) -> list[LoadedSession]:
    loaded, _ = load_sessions([trained_pair_dir])
    return sorted(loaded, key=lambda item: item.session.config.batch_size)


def test_i_draws_the_line_between_two_trained_runs(trained_pair: list[LoadedSession]):
    async def scenario():
        app = Host(lambda: SketchesScreen(trained_pair))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("i")  # evaluated in a thread: the UI stays live meanwhile
            screen = app.screen
            plot = screen.query_one("#interpolation-plot", SketchPlot)
            await wait_until(pilot, lambda: screen.interpolation is not None)
            assert not plot.loading and "α=0: sgd b=16" in str(plot.border_title)
            sharpness = str(screen.query_one("#sharpness", Static).render())
            assert "training loss change" in sharpness and "b = sgd b=full" in sharpness
            await pilot.press("escape")
            assert screen.query_one(ContentSwitcher).current == "sketches-view"
            await pilot.press("i")  # computed once, shown again at once
            assert screen.query_one(ContentSwitcher).current == "interpolation-view"
            await pilot.press("escape", "escape")
            assert not isinstance(app.screen, SketchesScreen)

    run(scenario)


def test_compare_opens_the_sketches_of_the_ticked_runs(tmp_path: Path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    for item in [*PAIR, LoadedSession(Path("x.json"), make_session(32, "adam"))]:
        save_model(item.session, folder / f"{item.session.id}.json")

    async def scenario():
        app = CompareHost([folder])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            await pilot.press("k")
            assert isinstance(app.screen, SketchesScreen)
            assert len(app.screen.runs) == 2
            assert any("No sketch for: adam b=32" in note for note in app.notes)
            await pilot.press("escape", "a", "k")  # nothing ticked any more
            said = str(app.screen.query_one("#comparison").border_subtitle)
            assert "k sketches 2 to 4 ticked runs (0 ticked)" in said

    run(scenario)


# What users see, at the smallest size the app supports


def test_snapshot_paraboloid_80x24(snap_compare, tmp_path: Path):
    async def drawn(pilot) -> None:
        await wait_until(pilot, lambda: lab_drawn(pilot.app))

    app = Host(lambda: ParaboloidScreen(out_dir=tmp_path))
    assert snap_compare(app, terminal_size=(80, 24), run_before=drawn)


def test_snapshot_sketches_80x24(snap_compare):
    assert snap_compare(Host(lambda: SketchesScreen(PAIR)), terminal_size=(80, 24))


def sharp_at_b(alpha: float) -> float:
    """Minima at α = 0 (wide) and α = 1 (narrow), as Keskar et al. drew them."""
    return 0.05 + alpha**2 * (alpha - 1) ** 2 * (1 + 4 * alpha**2)


def accuracy(loss: float) -> float:
    return max(0.1, 1 - loss / 2)


def test_snapshot_interpolation_80x24(snap_compare):
    alphas = [round(-1 + i / 10, 1) for i in range(31)]
    interp = Interpolation(
        session_a=PAIR[0].session.id,
        session_b=PAIR[1].session.id,
        label_a="sgd b=8 lr=0.05",
        label_b="sgd b=1024 lr=0.05",
        alphas=alphas,
        train_loss=[sharp_at_b(a) for a in alphas],
        train_accuracy=[accuracy(sharp_at_b(a)) for a in alphas],
        val_loss=[1.3 * sharp_at_b(a) for a in alphas],
        val_accuracy=[accuracy(1.3 * sharp_at_b(a)) - 0.02 for a in alphas],
        train_samples=2000,
        val_samples=360,
    )

    async def show(pilot) -> None:
        screen = pilot.app.screen
        screen.show_interpolation(interp)
        screen.query_one(ContentSwitcher).current = "interpolation-view"
        await pilot.pause()

    app = Host(lambda: SketchesScreen(PAIR))
    assert snap_compare(app, terminal_size=(80, 24), run_before=show)
