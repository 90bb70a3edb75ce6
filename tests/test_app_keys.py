"""Every key binding of every screen, pressed as a user would: each must change what is shown.

``KEYS`` lists, per screen, the keys pressed here; a test checks it against the screens' own
bindings, so a new key (or one Textual names differently, as ``]`` once was) cannot go
untested. Each footer must also fit 80 columns, and the command palette must offer the screen's
actions.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
from factories import (
    PAIR,
    SMALL_LAB,
    Host,
    hold_each_run,
    make_session,
    seeded_sweep_events,
    sketched,
    workers_busy,
)
from textual.app import App
from textual.binding import Binding
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer

import tui_lab.app.screens as screens_package
import tui_lab.app.widgets.curves as curves
import tui_lab.app.widgets.run_progress as run_progress
from tui_lab.app.app import BslabApp, screen_commands
from tui_lab.app.screens.analysis import AnalysisScreen
from tui_lab.app.screens.batch_finder import BatchFinderScreen
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.confirm import Confirm
from tui_lab.app.screens.help import HelpScreen, screen_keys
from tui_lab.app.screens.paraboloid import ParaboloidScreen
from tui_lab.app.screens.preset_file import PresetFileDialog
from tui_lab.app.screens.setup import SetupScreen
from tui_lab.app.screens.sketches import SketchesScreen
from tui_lab.app.screens.train import TrainScreen
from tui_lab.app.widgets.curves import CurvesChart
from tui_lab.app.worker import SweepEvents
from tui_lab.schema import TrainPreset

# The keys of each screen's BINDINGS that the tests below press (first key of a "a,b" binding
# and every other one too).
KEYS: dict[type[Screen], set[str]] = {
    SetupScreen: {"ctrl+r", "ctrl+o", "ctrl+s", "ctrl+f"},
    TrainScreen: {"x", "w", "b", "e", "f", "n", "c", "m"},
    CompareScreen: {"x", "v", "w", "e", "f", "k", "g", "m", "a", "o", "r", "p", "escape"},
    ParaboloidScreen: {
        *map(str, range(1, 10)),
        "b",
        "B",
        "right_square_bracket",
        "left_square_bracket",
        "c",
        "C",
        "n",
        "N",
        "e",
        "E",
        "s",
        "r",
        "escape",
    },
    SketchesScreen: {"i", "m", "escape"},
    AnalysisScreen: {"escape", "q", "g", "s", "m"},
    HelpScreen: {"escape", "q", "question_mark", "f1"},
    Confirm: {"y", "n", "escape"},
    BatchFinderScreen: {"enter", "escape"},
    PresetFileDialog: {"escape"},
}
APP_KEYS = {"ctrl+q", "f1", "question_mark", "f2", "f3", "f4", "f5"}


@pytest.fixture(autouse=True)
def steady_pictures(monkeypatch):
    """Each key's picture settles quickly: charts redraw at once rather than at most once a
    second (a throttle that spares training the UI's CPU), and the sweep's ETA does not count
    down a second at a time (its clock stands still), so ``settle`` need not wait them out."""
    monkeypatch.setattr(curves, "REDRAW_INTERVAL", 0.05)
    monkeypatch.setattr(run_progress, "time", SimpleNamespace(monotonic=lambda: 1000.0))


def binding_keys(bindings: list) -> set[str]:
    keys: set[str] = set()
    for binding in bindings:
        if isinstance(binding, Binding):
            keys.update(key.strip() for key in binding.key.split(","))
    return keys


def all_screen_classes() -> set[type[Screen]]:
    found = set()
    for info in __import__("pkgutil").iter_modules(screens_package.__path__):
        module = __import__(f"tui_lab.app.screens.{info.name}", fromlist=["_"])
        for _, value in inspect.getmembers(module, inspect.isclass):
            own = value.__module__ == module.__name__ and "BINDINGS" in vars(value)
            if issubclass(value, Screen) and own:  # a base such as CurvesScreen binds no key
                found.add(value)
    return found


def test_every_binding_of_every_screen_is_pressed_below():
    assert set(KEYS) == all_screen_classes()
    for screen, keys in KEYS.items():
        assert binding_keys(screen.BINDINGS) == keys, screen.__name__
    assert binding_keys(BslabApp.BINDINGS) == APP_KEYS


def picture(app: App) -> list[tuple[str, str]]:
    """What the top screen shows, text and styles, and the notifications over it."""
    strips = app.screen._compositor.render_strips()
    shown = [(segment.text, str(segment.style)) for strip in strips for segment in strip]
    return shown + [("notification", note.message) for note in app._notifications]


async def settle(pilot: Pilot, seconds: float = 0.15) -> None:
    """Until the picture stops changing (charts redraw on a throttle, workers post back)."""
    last = None
    for _ in range(80):
        await pilot.pause(seconds)
        if any(chart.redraw_pending for chart in pilot.app.screen.query(CurvesChart)):
            continue  # a chart has newer data to draw: the picture will change
        if workers_busy(pilot.app):
            continue  # a worker (reading sessions, drawing a lab) will post what it found
        now = (type(pilot.app.screen), picture(pilot.app))
        if now == last:
            return
        last = now


async def shows_an_effect(pilot: Pilot, key: str) -> None:
    before = (type(pilot.app.screen), picture(pilot.app))
    await pilot.press(key)
    await settle(pilot)
    assert (type(pilot.app.screen), picture(pilot.app)) != before, f"{key} did nothing"


def run(scenario) -> None:
    asyncio.run(scenario())


class ZoomHost(Host):
    """The sketches' host, with the app's ``m`` (zoom), which the screens bind as app.…"""

    action_toggle_maximize = BslabApp.action_toggle_maximize


def small_preset() -> TrainPreset:
    """Two runs of a few epochs: tests that train hold each run (``hold_each_run``)."""
    from factories import small_sweep

    return small_sweep(epochs=3, batch_sizes=[8, 32], trajectory={"enabled": False})


def test_setup_and_app_keys(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hold_each_run(monkeypatch)  # still training when ctrl+q is pressed
    # ctrl+f opens the finder's dialog; its search is test_app_setup's to check, not this one's
    monkeypatch.setattr(BatchFinderScreen, "on_mount", lambda self: None)

    async def scenario():
        app = BslabApp(preset=small_preset(), out_dir=tmp_path / "s", worker_mode="thread")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for key in ("ctrl+o", "ctrl+s", "ctrl+f"):  # each opens its dialog
                await shows_an_effect(pilot, key)
                await shows_an_effect(pilot, "escape")  # ... which closes
                assert isinstance(app.screen, SetupScreen)
            for key in ("f2", "f1", "escape", "f3", "question_mark", "q", "f4", "f5", "f2"):
                await shows_an_effect(pilot, key)
            await shows_an_effect(pilot, "ctrl+r")
            assert isinstance(app.screen, TrainScreen)
            await shows_an_effect(pilot, "ctrl+q")  # training: it asks
            assert isinstance(app.screen, Confirm)
            await shows_an_effect(pilot, "escape")
            await pilot.press("ctrl+q", "y")
            await settle(pilot)
            assert not app.is_running

    run(scenario)


def test_train_keys_while_training(tmp_path: Path, monkeypatch):
    """Every Train key, narrow and wide, while a run trains: each changes the picture or says
    why it cannot act (seeds to switch, a chart to zoom, the noise chart already beside)."""
    hold_each_run(monkeypatch)  # the first run trains until c, y cancels the sweep

    async def scenario():
        app = BslabApp(preset=small_preset(), out_dir=tmp_path, worker_mode="thread")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("ctrl+r")
            while not app.train_screen.sweep.sessions():
                await pilot.pause(0.1)
            screen = app.train_screen
            await settle(pilot)
            screen.set_focus(None)
            for key in ("x", "w", "w", "b", "b", "e", "f", "m"):
                await shows_an_effect(pilot, key)
            screen.query_one("#loss-chart").focus()
            for key in ("m", "m"):  # the focused chart fills the screen, then goes back
                await shows_an_effect(pilot, key)
            await pilot.resize_terminal(140, 40)  # wide: all three charts, b has none to swap
            await settle(pilot)
            await shows_an_effect(pilot, "b")
            for key, answer in (("n", "n"), ("c", "escape"), ("c", "y")):
                await shows_an_effect(pilot, key)
                assert isinstance(app.screen, Confirm), key
                await shows_an_effect(pilot, answer)
                assert isinstance(app.screen, TrainScreen)
            while app.train_screen.running:
                await pilot.pause(0.1)
            assert [run.status for run in screen.sweep.runs] == ["interrupted", "skipped"]

    run(scenario)


def test_train_seed_key_switches_means_and_every_seed(tmp_path: Path):
    async def scenario():
        app = BslabApp(out_dir=tmp_path, worker_mode="thread")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f3")
            app.train_screen.post_message(SweepEvents(seeded_sweep_events()[0]))
            await settle(pilot)
            await shows_an_effect(pilot, "e")  # every seed its own line
            assert not app.screen.query_one("#loss-chart").by_group
            await shows_an_effect(pilot, "e")  # back to each configuration's mean and band

    run(scenario)


def test_compare_keys(sessions_dir: Path):
    async def scenario():
        app = BslabApp(compare_paths=[sessions_dir])
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for key in ("x", "v", "v", "w", "e", "f", "p", "p", "a", "a", "a"):
                await shows_an_effect(pilot, key)
            assert app.screen.query_one("#loss-chart").only.startswith("b=")
            await shows_an_effect(pilot, "k")  # nothing ticked: it says what k needs
            await shows_an_effect(pilot, "g")  # and what g needs
            await pilot.press("a")
            await shows_an_effect(pilot, "g")
            assert isinstance(app.screen, AnalysisScreen)
            for key in ("s", "m", "m"):
                await shows_an_effect(pilot, key)
            for key in ("escape", "q", "g"):  # each leaves the analysis
                await shows_an_effect(pilot, key)
                assert isinstance(app.screen, CompareScreen)
                await pilot.press("g")
                await settle(pilot)
            await pilot.press("escape")
            app.screen.query_one("#comparison").focus()
            await shows_an_effect(pilot, "m")
            await shows_an_effect(pilot, "m")
            await shows_an_effect(pilot, "o")  # the folder field opens
            await shows_an_effect(pilot, "escape")  # and closes: keys are keys again
            assert app.screen.focused is app.screen.picker
            (sessions_dir / "new.json").write_text(
                make_session(2048, preset="later", minutes=30).model_dump_json()
            )
            await shows_an_effect(pilot, "r")  # the new run is listed
            assert app.screen.picker.option_count == 6
            await shows_an_effect(pilot, "r")  # nothing new: it says so
            assert "6 session files: 0 new" in app.screen.query_one("#comparison").border_subtitle

    run(scenario)


def test_paraboloid_keys(tmp_path: Path):
    async def scenario():
        app = Host(lambda: ParaboloidScreen(SMALL_LAB, out_dir=tmp_path))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            keys = ["3", "4", "5", "1", "2", "b", "B", "right_square_bracket"]
            keys += ["left_square_bracket", "c", "C", "n", "N", "e", "E", "s", "r"]
            for key in keys:
                await shows_an_effect(pilot, key)
            for key in "6789":  # no sixth optimizer in this lab: those keys are off
                assert not app.screen.check_action("toggle_optimizer", (int(key) - 1,))
            await shows_an_effect(pilot, "escape")  # pushed over the host: it closes

    run(scenario)


def test_sketches_keys():
    async def scenario():
        app = ZoomHost(lambda: SketchesScreen(PAIR))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for key in ("m", "m"):
                await shows_an_effect(pilot, key)
            await shows_an_effect(pilot, "escape")

        three = [*PAIR, sketched(make_session(64, "adam"))]
        app = Host(lambda: SketchesScreen(three))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await shows_an_effect(pilot, "i")  # says it needs exactly two

    run(scenario)


def test_every_footer_fits_80_columns(sessions_dir: Path):
    async def scenario():
        app = BslabApp(preset=small_preset(), out_dir=sessions_dir, worker_mode="thread")
        async with app.run_test(size=(80, 24)) as pilot:
            for key in ("f2", "f3", "f4", "f5"):
                await pilot.press(key)
                await settle(pilot, 0.2)
                footer = app.screen.query_one(Footer)
                assert footer.virtual_size.width <= footer.size.width, type(app.screen).__name__
            await pilot.press("f4")
            await settle(pilot, 0.2)
            await pilot.press("g")
            await settle(pilot, 0.2)
            footer = app.screen.query_one(Footer)
            assert footer.virtual_size.width <= footer.size.width, "analysis"

    run(scenario)


def test_the_palette_offers_the_actions_of_the_screen_it_is_opened_on(tmp_path: Path):
    async def scenario():
        app = Host(lambda: ParaboloidScreen(SMALL_LAB, out_dir=tmp_path))
        async with app.run_test(size=(80, 24)):
            names = [command.title for command in screen_commands(app.screen)]
            assert "LR ×1.5" in names and "More noise" in names and "Save" in names

    run(scenario)


def test_f1_says_what_each_key_does_in_full(tmp_path: Path):
    """The help F1 lists is each binding's description and tooltip: whole phrases, not cut."""

    async def scenario():
        for make_screen, key, says in (
            (
                lambda: TrainScreen(),
                "c",
                "Cancel: stop every running run (each saved) and start no more",
            ),
            (
                lambda: ParaboloidScreen(SMALL_LAB, out_dir=tmp_path),
                "]",
                "LR ×1.5: every optimizer's learning rate, times 1.5",
            ),
        ):
            app = Host(make_screen)
            async with app.run_test(size=(80, 24)):
                assert (key, says) in screen_keys(app.screen)

    run(scenario)
