"""Session files: atomic, bounded in size, summarised, and loadable (or clearly not)."""

from __future__ import annotations

import gc
import json
import math
import sys

import pytest
from factories import make_session, session_from_accuracies, sketched
from rich.console import Console

from tui_lab.core.storage import load_session, load_sessions, save_model
from tui_lab.errors import BadInput
from tui_lab.report.comparison import comparison_rows, comparison_table
from tui_lab.report.scaling import scaling_groups
from tui_lab.report.scaling_text import analysis_lines
from tui_lab.run.events import StepStats
from tui_lab.run.recorder import CurveBuffer, summarize
from tui_lab.schema import (
    LossCurve,
    Session,
)
from tui_lab.schema.common import round_each, round_significant


def test_summary_finds_when_the_target_was_reached():
    summary = session_from_accuracies(10, [0.5, 0.8, 0.92, 0.95, 0.93], seconds=2.0).summary
    assert summary.epochs_to_target == 3
    assert summary.steps_to_target == 300 and summary.samples_to_target == 3000
    assert summary.seconds_to_target == pytest.approx(6.0)
    assert summary.seconds_per_epoch == pytest.approx(2.0)
    assert summary.samples_per_second == pytest.approx(500.0)
    assert (summary.best_accuracy, summary.best_epoch, summary.final_accuracy) == (0.95, 4, 0.93)


def test_summary_of_a_run_that_never_reached_the_target():
    summary = session_from_accuracies(10, [0.5, 0.6], seconds=1.0).summary
    assert summary.epochs_to_target is None and summary.seconds_to_target is None


def test_curve_stays_bounded_and_spans_the_whole_run():
    curve = LossCurve()
    buffer = CurveBuffer(curve, limit=50)
    for step in range(1, 10_001):
        buffer.append(StepStats(0, 1, step, step / 10_000, step, step / 100, 1.0, 0.1, 1.0))
    buffer.flush()  # the recorder flushes when the run ends
    assert 25 <= len(curve.loss) <= 51
    assert curve.step[-1] == 10_000 and curve.step[0] <= 10_000 / 25
    assert len(curve.step) == len(curve.seconds) == len(curve.samples) == len(curve.loss)


def test_save_is_atomic_and_round_trips(tmp_path):
    session = session_from_accuracies(32, [0.5, 0.9], seconds=1.0)
    path = tmp_path / "s.json"
    save_model(session, path)
    assert load_session(path) == session
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_a_session_file_stays_small_for_a_long_run(tmp_path):
    session = session_from_accuracies(1, [0.5] * 200, seconds=1.0)
    buffer = CurveBuffer(session.curve, limit=400)
    for step in range(1, 200_001, 50):
        buffer.append(StepStats(0, 1, step, 0.5, step, step / 100, 0.123456, 0.1, 1.0))
    save_model(session, tmp_path / "s.json")
    assert (tmp_path / "s.json").stat().st_size < 150_000


def test_loading_a_folder_skips_broken_files_and_keeps_the_rest(tmp_path):
    save_model(session_from_accuracies(32, [0.9], 1.0), tmp_path / "good.json")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "wrong.json").write_text(json.dumps({"schema_version": 1, "id": 3}))
    loaded, warnings = load_sessions([tmp_path])
    assert [item.path.name for item in loaded] == ["good.json"]
    assert len(warnings) == 2 and any("broken.json" in w for w in warnings)


def test_a_broken_session_named_explicitly_is_an_error(tmp_path):
    (tmp_path / "broken.json").write_text("[1, 2]")
    with pytest.raises(BadInput, match=r"broken\.json"):
        load_sessions([tmp_path / "broken.json"])
    assert gc.isenabled()  # paused while reading, on again after an error too


def test_reading_leaves_the_cycle_collector_as_it_found_it(tmp_path):
    save_model(session_from_accuracies(32, [0.9], 1.0), tmp_path / "good.json")
    seen = []
    load_sessions([tmp_path], progress=lambda *_: seen.append(gc.isenabled()))
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        load_sessions([tmp_path])
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()


def test_comparison_normalises_time_to_the_fastest_and_marks_the_optima():
    sessions = [
        session_from_accuracies(1, [0.5, 0.6, 0.7], seconds=8.0),
        session_from_accuracies(32, [0.8, 0.95, 0.96], seconds=1.0),
        session_from_accuracies(512, [0.5, 0.85, 0.91], seconds=0.5),
    ]
    rows = comparison_rows(sessions)
    assert [r.relative_time for r in rows] == [16.0, 2.0, 1.0]
    assert [r.seconds_to_target for r in rows] == [None, 2.0, 1.5]
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(comparison_table(rows))
    text = console.export_text()
    assert "1.5★" in text  # batch 512 is fastest to the target
    assert "96.0%★" in text  # batch 32 ends most accurate
    assert "never" in text
    by_time = comparison_rows(sessions, sort="target")
    assert [r.session.config.batch_size for r in by_time] == [512, 32, 1]


def timed(session: Session, cpu_share: float, load: float) -> Session:
    """The run as if its 2 threads on 2 cores got ``cpu_share`` of the CPU time they could use."""
    env = session.environment.model_copy(update={"threads": 2, "cores": 2})
    epochs = [
        e.model_copy(update={"cpu_seconds": 2 * cpu_share * e.train_seconds, "load_average": load})
        for e in session.epochs
    ]
    session = session.model_copy(update={"environment": env, "epochs": epochs})
    session.summary = summarize(session)
    return session


def test_runs_timed_on_a_busy_machine_are_marked_so():
    quiet = timed(session_from_accuracies(8, [0.5, 0.95], seconds=1.0), cpu_share=0.95, load=1.8)
    waited = timed(session_from_accuracies(32, [0.5, 0.95], seconds=9.0), cpu_share=0.45, load=1.9)
    loaded = timed(session_from_accuracies(64, [0.5, 0.95], seconds=1.0), cpu_share=0.95, load=4.5)
    assert not quiet.summary.contended
    assert waited.summary.contended and waited.summary.cpu_utilisation == pytest.approx(0.45)
    assert loaded.summary.contended and loaded.summary.load_average == 4.5
    console = Console(width=80, record=True)
    console.print(comparison_table(comparison_rows([quiet, waited, loaded])))
    text = console.export_text()
    assert "1.00 " in text and "9.00~" in text and "1.00~" in text
    assert "~ timed on a busy machine" in text
    lines = analysis_lines(scaling_groups([quiet, waited, loaded])[0])
    assert any("batch 32, 64 was timed on a busy machine" in line for line in lines)


def test_a_run_that_ended_at_chance_did_not_learn():
    stuck = session_from_accuracies(1, [0.09, 0.111], seconds=1.0)
    learning = session_from_accuracies(32, [0.5, 0.95], seconds=1.0)
    assert stuck.summary.learned is False and learning.summary.learned is True
    console = Console(width=80, record=True)
    console.print(comparison_table(comparison_rows([stuck, learning])))
    assert "did not learn" in console.export_text()
    lines = analysis_lines(scaling_groups([stuck, learning])[0])
    assert any("batch 1 did not learn at lr 0.05" in line for line in lines)


def test_a_run_that_learned_then_collapsed_is_not_called_did_not_learn():
    collapsed = session_from_accuracies(1, [0.5, 0.744, 0.089], seconds=1.0)
    learning = session_from_accuracies(32, [0.5, 0.95], seconds=1.0)
    assert collapsed.summary.learned is False
    console = Console(width=80, record=True)
    console.print(comparison_table(comparison_rows([collapsed, learning])))
    text = console.export_text()
    assert "did not learn" not in text and "collapsed" in text
    assert "learned to 74.4% (epoch 2), then collapsed to 8.9%" in text
    lines = analysis_lines(scaling_groups([collapsed, learning])[0])
    assert not any("did not learn" in line for line in lines)
    assert any(
        "batch 1 at lr 0.05 learned to 74.4% (epoch 2), then collapsed to 8.9%" in line
        for line in lines
    )


def test_no_run_is_most_accurate_when_runs_stopped_at_the_target():
    sessions = [session_from_accuracies(b, [0.5, 0.91], seconds=1.0) for b in (8, 32)]
    for session in sessions:
        session.config = session.config.updated(stop_at_target=True)
    console = Console(width=80, record=True)
    console.print(comparison_table(comparison_rows(sessions)))
    text = console.export_text()
    assert "most accurate" not in text and "where each run stopped (stop at target)" in text
    lines = analysis_lines(scaling_groups(sessions)[0])
    assert not any("optimal in final accuracy" in line for line in lines)
    assert any("no optimum in final accuracy" in line for line in lines)


def test_sketch_numbers_are_rounded_when_built_and_read_back_exactly_as_saved(tmp_path):
    session = sketched(make_session(8)).session
    sketch = session.trajectory
    built = sketch.updated(path_x=[math.pi] * len(sketch.path_x))
    assert built.path_x[0] == 3.1416  # five significant digits: short files
    session.trajectory = built
    save_model(session, tmp_path / "s.json")
    assert load_session(tmp_path / "s.json") == session
    edited = (tmp_path / "s.json").read_text().replace("3.1416", "3.14159265", 1)
    (tmp_path / "s.json").write_text(edited)
    assert load_session(tmp_path / "s.json").trajectory.path_x[0] == 3.14159265  # as written


def test_rounding_the_largest_float_keeps_it():
    largest = sys.float_info.max
    assert round_significant(largest) == largest
    assert round_each([largest, -largest, 1.234567]) == [largest, -largest, 1.2346]
