"""The Setup screen: the form shows a preset, flags invalid values inline, loads and saves."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from factories import HOLD_LIMIT_SECONDS, make_session, run_config, wait_until
from textual.widgets import Button, Input, Select, Static

from tui_lab.app.app import BslabApp
from tui_lab.app.preset_form import TOP_FIELDS, fields_from_preset, preset_from_fields
from tui_lab.app.screens.batch_finder import BatchFinderScreen
from tui_lab.app.screens.paraboloid import ParaboloidScreen
from tui_lab.app.screens.setup import SetupScreen
from tui_lab.core.data import load_data, train_size
from tui_lab.core.storage import load_preset, save_model
from tui_lab.run.estimate import estimate_sweep
from tui_lab.schema import OptimizerConfig, TrainPreset

PRESETS = Path(__file__).parent.parent / "presets"

PRESET = TrainPreset(
    name="tiny",
    dataset="digits",
    train_subset=200,
    optimizer=OptimizerConfig(name="sgd", lr=0.05, momentum=0.9),
    batch_sizes=[8, 32, "full"],
    epochs=2,
    device="cpu",
)


def sync(test):
    """Run an async test body with asyncio.run (no asyncio plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return wrapper


def make_app(tmp_path: Path, preset: TrainPreset = PRESET) -> BslabApp:
    return BslabApp(preset=preset, out_dir=tmp_path / "sessions", worker_mode="thread")


def error_of(screen: SetupScreen, field: str) -> str:
    error = screen.query_one(f"#error-{field}", Static)
    return str(error.render()) if error.display else ""


def test_form_round_trips_a_preset_with_several_optimizers():
    optimizers = [
        {"name": "adam"},
        {"name": "adam", "betas": (0.8, 0.9)},
    ]  # the same one twice: refused
    preset = PRESET.updated(optimizer=None, optimizers=optimizers)
    fields = fields_from_preset(preset)
    assert fields["more-optimizers"] == "adam betas=0.8,0.9"
    assert preset_from_fields(fields, PRESET) == preset  # the text carries the second one
    fields["opt-lr"] = "0.01"
    fields["more-optimizers"] = "adam betas=0.8,0.9; rmsprop lr=0.001,0.0003"
    edited = preset_from_fields(fields, preset)
    assert [o.lr for o in edited.optimizer_grid()] == [0.01, None, [0.001, 0.0003]]
    fields["more-optimizers"] = ""
    assert preset_from_fields(fields, preset).optimizers is None  # back to one optimizer


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.json")), ids=lambda p: p.name)
def test_every_preset_round_trips_through_the_form(path):
    """preset → form → preset, with nothing the form shows taken from the preset itself: the
    form expresses every field of every preset a user edits by hand (seeds, lr grids, several
    optimizers, protocol, stop-at-target, stacking, parallel...)."""
    preset = load_preset(path)
    if not isinstance(preset, TrainPreset):
        pytest.skip("not a training sweep")
    shown = {*TOP_FIELDS, "optimizer", "optimizers", "lr_grid", "lr_scaling", "executor"}
    hidden = {key: getattr(preset, key) for key in preset.model_fields_set - shown}
    assert preset_from_fields(fields_from_preset(preset), TrainPreset(**hidden)) == preset


def test_the_training_set_size_setup_counts_with_is_the_loaded_one():
    assert train_size("digits") == load_data("digits").n_train
    assert train_size("digits", 200) == 200 and train_size("mnist", 10**6) == 60_000


def past_run(batch: int, seconds_per_epoch: float, **environment) -> object:
    """A finished lenet5 b=``batch`` run on the digits (1000 samples an epoch) on this host."""
    session = make_session(batch, seconds_per_epoch=seconds_per_epoch)
    env = session.environment.model_copy(update={"host": socket.gethostname(), **environment})
    return session.model_copy(update={"environment": env})


def test_the_estimate_plays_past_runs_through_the_executor_s_plan():
    """b=8 cost 1.0 s per 1000 samples here, b=64 0.2 s (0.1 s of each is evaluation): a sweep
    of b=8, 64 and 16 (costed between them in log-log) for 4 epochs, one slot at a time. Runs
    of another host or trained stacked are not a basis."""
    past = [past_run(8, 0.9), past_run(64, 0.1), past_run(8, 50.0, host="elsewhere")]
    past.append(past_run(64, 50.0, training_step="stacked"))
    runs = [run_config(b) for b in (8, 64, 16)]
    estimate = estimate_sweep(runs, 1000, 1, past)
    assert estimate is not None and not estimate.upper_bound
    assert estimate.seconds == pytest.approx(4 * (1.0 + 0.2 + 1.0 * 0.2 ** (1 / 3)))
    assert estimate.basis == "from 2 past runs here, 1 at once"
    assert estimate_sweep(runs, 1000, 3, past).seconds == pytest.approx(4 * 1.0)  # side by side
    assert estimate_sweep([run_config(8).updated(model="mlp")], 1000, 1, past) is None


@sync
async def test_the_run_count_is_the_sweep_s_own_and_follows_the_fields(tmp_path):
    preset = load_preset(PRESETS / "shallue-digits.json")
    app = make_app(tmp_path, preset)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        verdict = screen.query_one("#verdict", Static)
        await wait_until(pilot, lambda: "120 runs" in str(verdict.render()))  # 10 × 3 lrs × 4
        assert screen.preset == preset
        assert "No time estimate yet" in str(screen.query_one("#estimate", Static).render())
        screen.query_one("#seeds", Input).value = "3, 7"
        await pilot.pause()
        assert "'seeds' or 'replicates'" in error_of(screen, "seeds")
        assert screen.query_one("#start", Button).disabled
        screen.query_one("#replicates", Input).value = ""
        await wait_until(pilot, lambda: "60 runs" in str(verdict.render()))
        screen.query_one("#lr_grid", Input).value = ""
        await pilot.pause()
        assert "needs an lr grid" in error_of(screen, "protocol")
        screen.query_one("#protocol", Select).value = "fixed"
        await wait_until(pilot, lambda: "20 runs" in str(verdict.render()))
        screen.query_one("#more-optimizers", Input).value = "adam; rmsprop lr=0,0.1"
        await pilot.pause()
        assert error_of(screen, "more-optimizers").startswith("optimizer 3 (rmsprop) lr"), error_of(
            screen, "more-optimizers"
        )
        screen.query_one("#more-optimizers", Input).value = "adam; rmsprop lr=0.01,0.1"
        await wait_until(pilot, lambda: "80 runs" in str(verdict.render()))  # 20 × (1 + 1 + 2)
        screen.query_one("#batch_sizes", Input).value = "8, 4096"
        await pilot.pause()
        assert "larger than the training set" in error_of(screen, "batch_sizes")


@sync
async def test_setup_estimates_the_time_from_runs_saved_here(tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    for batch, seconds in ((8, 0.9), (64, 0.1)):
        save_model(past_run(batch, seconds), sessions / f"b{batch}.json")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        estimate = app.screen.query_one("#estimate", Static)
        await wait_until(pilot, lambda: "Time ≈" in str(estimate.render()))
        assert "from 2 past runs here" in str(estimate.render())


def test_the_ray_field_chooses_where_the_sweep_trains():
    on_cluster = PRESET.updated(
        executor={"kind": "ray", "address": "head:6379", "gpus_per_run": 0.5}
    )
    fields = fields_from_preset(on_cluster)
    assert fields["ray"] == "head:6379"
    assert preset_from_fields(fields, on_cluster) == on_cluster
    fields["ray"] = "local"
    local_ray = preset_from_fields(fields, on_cluster).executor
    assert (local_ray.kind, local_ray.address, local_ray.gpus_per_run) == ("ray", None, 0.5)
    fields["ray"] = ""
    assert preset_from_fields(fields, on_cluster).executor.kind == "local"
    assert fields_from_preset(PRESET)["ray"] == ""


@sync
async def test_on_ray_a_device_missing_here_is_not_an_error(tmp_path):
    app = make_app(tmp_path, PRESET.updated(device="cuda", executor={"kind": "ray"}))
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        assert error_of(screen, "device") == "" and screen.preset is not None


@sync
async def test_invalid_values_are_shown_inline_and_block_the_start(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        screen.query_one("#epochs", Input).value = "0"
        screen.query_one("#batch_sizes", Input).value = "8, huge"
        await pilot.pause()
        assert error_of(screen, "epochs") == "Input should be greater than 0"
        assert "'huge'" in error_of(screen, "batch_sizes")
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+r")
        assert app.screen is screen  # nothing started

        screen.query_one("#epochs", Input).value = "3"
        screen.query_one("#batch_sizes", Input).value = "8"
        await pilot.pause()
        assert error_of(screen, "epochs") == ""
        assert not screen.query_one("#start", Button).disabled
        assert screen.preset is not None and screen.preset.epochs == 3


@sync
async def test_optimizer_choice_shows_only_its_hyperparameters(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#optimizer", Select).value = "adam"
        # The form reacts on Select.Changed, a message: on a busy machine it can take a while.
        await wait_until(pilot, lambda: screen.query_one("#row-opt-betas").display)
        assert not screen.query_one("#row-opt-momentum").display
        assert screen.query_one("#opt-eps", Input).placeholder == "1e-08"
        screen.query_one("#opt-betas", Input).value = "0.9, 1.5"
        await pilot.pause()
        assert error_of(screen, "opt-betas") == "Input should be less than 1"


@sync
async def test_batch_size_quick_picks_work_from_the_keyboard(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#batch-picks").focus()
        await pilot.press("right", "right", "space")  # the third pick: 4
        await pilot.press("right", "space")  # 8 was already in: removed
        assert screen.query_one("#batch_sizes", Input).value == "4, 32, full"
        picks = str(screen.query_one("#batch-picks").render())
        assert "[8]" in picks and picks.count("[") == 1  # where the keys act, in any colours


@sync
async def test_save_then_load_a_preset_with_the_keyboard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path)
    target = tmp_path / "saved.json"
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#epochs", Input).value = "5"
        await pilot.press("ctrl+s")
        app.screen.query_one("#preset-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert json.loads(target.read_text())["epochs"] == 5

        screen.query_one("#epochs", Input).value = "7"
        await pilot.press("ctrl+o")
        app.screen.query_one("#preset-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.query_one("#epochs", Input).value == "5"


@sync
async def test_loading_a_broken_preset_names_the_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochs": -1}))
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("ctrl+o")
        app.screen.query_one("#preset-path", Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("epochs" in m and "greater than 0" in m for m in messages)
        assert screen.query_one("#epochs", Input).value == "2"  # the form is unchanged


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_setup_layout(snap_compare, tmp_path, monkeypatch, size):
    fixed = [("auto (cpu)", "auto"), ("cpu  CPU, 2 threads", "cpu")]  # same on every machine
    monkeypatch.setattr("tui_lab.app.screens.setup.device_options", lambda: list(fixed))
    assert snap_compare(make_app(tmp_path), terminal_size=size)


def shown(widget) -> str:
    """What a widget shows on screen, as text."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def fake_trial(fits_up_to: int):
    """A finder trial without training (but not instant): sizes above ``fits_up_to`` run out
    of memory."""

    def trial(batch_size: int) -> float:
        time.sleep(0.05)
        if batch_size > fits_up_to:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 1000.0 * batch_size / (batch_size + 8)

    return trial


def held(trial, let_go: threading.Event):
    """``trial`` once ``let_go`` is set: a search that cannot end before the test lets it."""

    def wait_then_try(batch_size: int) -> float:
        let_go.wait(HOLD_LIMIT_SECONDS)
        return trial(batch_size)

    return wait_then_try


@pytest.fixture
def low_memory(monkeypatch):
    """Setup's finder on a device where only batches up to 40 fit."""
    from tui_lab.app.screens import batch_finder

    real = batch_finder.training_trial

    def training_trial(config, data):
        real(config, data)
        return fake_trial(40)

    monkeypatch.setattr(batch_finder, "training_trial", training_trial)
    # The timings are made up: whether this machine is busy must not change what they show.
    monkeypatch.setattr(batch_finder, "trial_busy", lambda device: lambda cpu, wall: False)


@sync
async def test_find_largest_batch_then_put_it_in_the_batch_sizes(tmp_path):
    app = make_app(tmp_path, PRESET.model_copy(update={"model": "mlp"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+f")
        finder = app.screen
        assert isinstance(finder, BatchFinderScreen)
        await wait_until(pilot, lambda: finder.result is not None)
        assert finder.largest == 200  # 200 digits fit: the training set is the bound
        await pilot.pause()
        trials = shown(finder.query_one("#finder-trials"))
        assert "Batch sizes tried" in trials and "out of memory" not in trials
        assert "the whole training set" in shown(finder.query_one("#finder-verdict"))
        await pilot.press("enter")
        assert isinstance(app.screen, SetupScreen)
        assert app.screen.query_one("#batch_sizes", Input).value == "8, 32, full, 200"


@sync
async def test_finder_reports_out_of_memory_and_closing_stops_it(tmp_path, low_memory, monkeypatch):
    from tui_lab.app.screens import batch_finder

    async with make_app(tmp_path).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        await pilot.press("ctrl+f")
        finder = app.screen
        await wait_until(pilot, lambda: finder.result is not None)
        assert finder.largest == 40
        assert [t.batch_size for t in finder.result.trials if not t.fits] == [64, 48, 44, 42, 41]
        await pilot.pause()
        assert "out of memory" in shown(finder.query_one("#finder-trials"))
        await pilot.press("escape")  # closing, not using: the field stays as it was
        assert app.screen.query_one("#batch_sizes", Input).value == "8, 32, full"

        let_go = threading.Event()  # the next search's trials wait until the dialog is closed
        monkeypatch.setattr(
            batch_finder, "training_trial", lambda c, d: held(fake_trial(40), let_go)
        )
        await pilot.press("ctrl+f")
        searching = app.screen
        await pilot.press("escape")  # closed while still searching: the search stops
        assert isinstance(app.screen, SetupScreen)
        await wait_until(pilot, lambda: searching.search_worker.is_cancelled)
        let_go.set()  # only now may a trial end: the search must see that it was cancelled
        await wait_until(pilot, lambda: searching.search_worker.is_finished)
        assert searching.search_worker.is_cancelled and searching.result is None


def test_batch_finder_layout_80x24(snap_compare, tmp_path, monkeypatch, low_memory):
    fixed = [("cpu  CPU", "cpu")]  # the form behind the dialog: the same on every machine
    monkeypatch.setattr("tui_lab.app.screens.setup.device_options", lambda: list(fixed))

    async def find(pilot) -> None:
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: pilot.app.screen.result is not None)

    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=find)


@sync
async def test_f5_opens_the_paraboloid_lab_also_from_the_palette(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Paraboloid lab" in titles and "Find batch" in titles  # Setup's own keys
        await pilot.press("f5")
        assert isinstance(app.screen, ParaboloidScreen)
        await pilot.press("f2")
        assert isinstance(app.screen, SetupScreen)


@sync
async def test_a_preset_naming_the_users_model_and_data_is_shown_and_kept(tmp_path):
    model = {"file": str(tmp_path / "nets.py"), "factory": "build", "kwargs": {"width": 4}}
    preset = PRESET.updated(model=model, dataset={"path": str(tmp_path / "d.npz")})
    fields = fields_from_preset(preset)
    assert (fields["model"], fields["dataset"]) == ("nets.py:build(width=4)", "d.npz")
    assert preset_from_fields(fields, preset) == preset
    app = make_app(tmp_path, preset)
    async with app.run_test() as pilot:
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        assert screen.query_one("#model", Select).value == "nets.py:build(width=4)"
        screen.query_one("#model", Select).value = "mlp"
        await pilot.pause()
        assert screen.validate() is not None and screen.preset.model == "mlp"
