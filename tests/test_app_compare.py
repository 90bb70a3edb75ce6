"""The Compare screen and the help, driven with the keyboard as a user over SSH would."""

from __future__ import annotations

import asyncio
from pathlib import Path

from factories import CompareHost, charts_drawn, make_session, workers_done
from textual.app import App
from textual.widgets import DataTable, SelectionList

from tui_lab.app.screens.analysis import AnalysisScreen
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.help import HelpScreen
from tui_lab.app.widgets.comparison import COLUMNS, ComparisonTable
from tui_lab.app.widgets.curves import REDRAW_INTERVAL, CurvesChart
from tui_lab.app.widgets.scaling_chart import ScalingChart
from tui_lab.core.storage import save_model


def run(scenario) -> None:
    asyncio.run(scenario())


def shown_batches(app: App) -> list[tuple[str, int]]:
    table = app.screen.query_one(ComparisonTable)
    return [(s.config.optimizer.name, s.config.batch_size) for s in table.row_sessions]


def test_named_folder_shows_every_run_and_reports_broken_files(sessions_dir: Path):
    (sessions_dir / "broken.json").write_text("{not json")

    async def scenario():
        app = CompareHost([sessions_dir])
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            assert len(shown_batches(app)) == 5
            assert any("broken.json" in note and "invalid JSON" in note for note in app.notes)
            loss = app.screen.query_one("#loss-chart", CurvesChart)
            labels = [s.label for s in loss.series() if s.label]
            assert "sgd b=1 (diverged)" in labels and "adam b=32" in labels

    run(scenario)


def test_a_folder_that_does_not_exist_is_said_so_not_reported_as_a_skipped_file(
    sessions_dir: Path, tmp_path: Path
):
    typo = tmp_path / "sesions"

    async def scenario(paths: list[Path]) -> list[str]:
        app = CompareHost(paths)
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            assert len(shown_batches(app)) == (5 if sessions_dir in paths else 0)
        assert not any("skipped" in note or "file not found" in note for note in app.notes)
        return app.notes

    alone = asyncio.run(scenario([typo]))
    assert f"No sessions: {typo} does not exist. Run a sweep, or press o" in alone[0]
    beside = asyncio.run(scenario([sessions_dir, typo]))
    assert f"{typo}: no such file or folder" in beside


def test_file_names_that_look_like_markup_are_shown_as_written(tmp_path: Path):
    """A path is data, never markup: ``[/]`` once crashed the notice, ``[b]`` vanished."""
    from textual.widgets._toast import Toast

    folder = tmp_path / "runs [" / "] [b]x[@click=app.quit]"  # its path holds [/]
    folder.mkdir(parents=True)
    (folder / "broken [b].json").write_text("{not json")

    async def scenario():
        app = CompareHost([folder, tmp_path / "gone [" / "]"])
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await workers_done(pilot)
            await pilot.pause()
            shown = "\n".join(str(toast.render()) for toast in app.screen.query(Toast))
            assert f"{folder / 'broken [b].json'}: invalid JSON" in shown
            assert f"{tmp_path / 'gone ['}/] does not exist" in shown

    run(scenario)


def test_default_folder_preselects_the_newest_sweep(sessions_dir: Path, monkeypatch):
    monkeypatch.chdir(sessions_dir.parent)

    async def scenario():
        app = CompareHost([])
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            picker = app.screen.query_one(SelectionList)
            assert picker.option_count == 5
            newest = [("adam", 32), ("sgd", 1), ("sgd", 32), ("sgd", 256)]
            assert sorted(shown_batches(app)) == newest
            save_model(make_session(1024, preset="later"), sessions_dir / "later.json")
            await pilot.press("r")  # a run finished elsewhere meanwhile
            await workers_done(pilot)
            assert picker.option_count == 6

    run(scenario)


def test_keyboard_selects_runs_and_switches_the_chart_axis(sessions_dir: Path):
    async def scenario():
        app = CompareHost([sessions_dir])
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            await pilot.press("a")  # everything was ticked: untick all
            assert shown_batches(app) == []
            await pilot.press("space", "down", "space")
            assert len(shown_batches(app)) == 2
            await pilot.press("x")
            charts = list(app.screen.query(CurvesChart))
            assert [c.x_axis for c in charts] == ["samples", "samples"]
            await pilot.press("x", "w")
            await charts_drawn(pilot)
            loss = app.screen.query_one("#loss-chart", CurvesChart)
            assert loss.x_axis == "seconds" and "training seconds" in str(loss.border_title)
            assert not any(s.faint for s in loss.series())

    run(scenario)


def test_table_sorts_by_key_and_by_clicking_a_header(sessions_dir: Path):
    async def scenario():
        app = CompareHost([sessions_dir])
        async with app.run_test(size=(120, 36)) as pilot:
            await workers_done(pilot)
            table = app.screen.query_one(ComparisonTable)
            table.focus()
            labels = [column.label for column in COLUMNS]
            table.move_cursor(column=labels.index("s/ep"))
            await pilot.press("s")
            times = [s.summary.seconds_per_epoch for s in table.row_sessions]
            assert times == sorted(times)
            await pilot.press("s")  # again: the other way round
            assert [s.summary.seconds_per_epoch for s in table.row_sessions] == sorted(times)[::-1]

            final = labels.index("final")
            table.post_message(DataTable.HeaderSelected(table, None, final, None))  # a click
            await pilot.pause()
            finals = [s.summary.final_accuracy for s in table.row_sessions]
            assert finals == sorted(finals)
            assert "▲" in str(table.ordered_columns[final].label)

    run(scenario)


def test_typing_a_folder_adds_its_sessions(sessions_dir: Path, tmp_path: Path):
    other = tmp_path / "from-gpu-box"
    other.mkdir()
    save_model(make_session(512, preset="gpu"), other / "gpu.json")

    async def scenario():
        app = CompareHost([sessions_dir])
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            await pilot.press("o")
            app.screen.focused.value = str(other)  # typing a long path key by key is slow
            await pilot.press("enter")
            await workers_done(pilot)
            picker = app.screen.query_one(SelectionList)
            assert picker.option_count == 6
            assert app.screen.focused is picker
            await pilot.press("o", *"/nowhere", "enter")
            await workers_done(pilot)
            assert any("not a folder" in note for note in app.notes)

    run(scenario)


def test_help_lists_the_keys_of_the_screen_below_and_closes_with_escape(sessions_dir: Path):
    async def scenario():
        app = CompareHost([sessions_dir])
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            shown = app.screen.query_one("#help-keys")
            keys = "".join(shown.render_line(y).text for y in range(shown.size.height))
            assert "X-axis" in keys and "Tick all/none" in keys
            await pilot.press("escape")
            assert isinstance(app.screen, CompareScreen)

    run(scenario)


def _settle(seconds: float = REDRAW_INTERVAL + 0.2):
    async def run_before(pilot) -> None:
        await workers_done(pilot)  # the sessions are read
        await pilot.pause(seconds)  # and the throttled charts drawn

    return run_before


def test_snapshot_compare_80x24(snap_compare, sessions_dir: Path):
    assert snap_compare(CompareHost([sessions_dir]), terminal_size=(80, 24), run_before=_settle())


def test_snapshot_compare_wide(snap_compare, sessions_dir: Path):
    assert snap_compare(CompareHost([sessions_dir]), terminal_size=(160, 45), run_before=_settle())


def test_snapshot_help_80x24(snap_compare, sessions_dir: Path):
    async def open_help(pilot) -> None:
        await _settle()(pilot)
        await pilot.press("question_mark")

    assert snap_compare(CompareHost([sessions_dir]), terminal_size=(80, 24), run_before=open_help)


def test_analysis_key_opens_the_scaling_charts_of_the_ticked_runs(sessions_dir: Path):
    async def scenario():
        app = CompareHost([sessions_dir])
        async with app.run_test(size=(80, 24)) as pilot:
            await workers_done(pilot)
            await pilot.press("a")  # untick all: nothing to analyse
            await pilot.press("g")
            assert isinstance(app.screen, CompareScreen)
            said = str(app.screen.query_one("#comparison").border_subtitle)
            assert "g analyses the ticked runs" in said  # in place, not over the table
            await pilot.press("a", "g")
            assert isinstance(app.screen, AnalysisScreen)
            await pilot.pause(0.2)
            steps, time_chart = list(app.screen.query(ScalingChart))[:2]
            assert "steps to 90%" in str(steps.border_title)
            assert "fastest to target: batch 256" in str(time_chart.border_subtitle)
            findings = str(app.screen.query(".findings").first().render())
            assert "optimal in wall time: batch 256" in findings
            await pilot.press("s")
            assert "samples to 90%" in str(steps.border_title)
            await pilot.press("escape")
            assert isinstance(app.screen, CompareScreen)

    run(scenario)


def test_snapshot_analysis_80x24(snap_compare, sessions_dir: Path):
    async def open_analysis(pilot) -> None:
        await workers_done(pilot)
        await pilot.press("g")
        await pilot.pause(0.3)

    app = CompareHost([sessions_dir])
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_analysis)


def test_seeds_are_one_row_per_configuration_as_bslab_compare_prints_them(tmp_path: Path):
    """Two configurations of 3 seeds: two rows with the CLI's columns and spreads; enter on a
    configuration lists its seeds under it, enter again folds them."""
    from factories import seed_session
    from rich.console import Console

    from tui_lab.report.seeds import SEED_COLUMNS, sweep_view

    sessions = [seed_session(batch, seed) for batch in (8, 64) for seed in range(3)]
    for session in sessions:
        save_model(session, tmp_path / f"{session.id}.json")
    console = Console(width=100, record=True)
    console.print(sweep_view(sessions))
    printed = console.export_text()

    async def scenario():
        app = CompareHost([tmp_path])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)  # the newest sweep is ticked: all six runs
            table = app.screen.query_one(ComparisonTable)
            assert table.grouped and table.row_count == 2
            labels = [str(column.label).split(" ")[0] for column in table.columns.values()]
            assert labels == SEED_COLUMNS  # every column fits 80 columns
            first = [str(cell).removeprefix("━ ") for cell in table.get_row_at(0)]
            assert first[:4] == ["sgd", "0.05", "8", "3/3"]
            assert "±" in first[4]  # mean ± sd of seconds per epoch, as printed:
            assert " ".join(first[1:6]) in " ".join(printed.split())
            table.focus()
            table.move_cursor(row=0, column=0)
            await pilot.press("enter")
            assert table.row_count == 5  # the configuration, then its 3 seeds
            assert [str(table.get_row_at(i)[2]) for i in (1, 2, 3)] == ["s=0", "s=1", "s=2"]
            await pilot.press("enter")
            assert table.row_count == 2

    run(scenario)
