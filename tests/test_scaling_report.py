"""The scaling analysis as users read it: optima, the fit, and charts that show unreached runs."""

from __future__ import annotations

import plotext
from factories import noise_point, session_from_accuracies
from rich.console import Console

from tui_lab.report.comparison import (
    comparison_rows,
    comparison_view,
    noise_interval_text,
    noise_verdict,
)
from tui_lab.report.scaling import draw_steps_to_target, render_report, scaling_groups
from tui_lab.report.scaling_text import analysis_lines
from tui_lab.schema.analysis import MemoryPeak


def sweep():
    """Batch 1 never gets to 90%; larger batches need more epochs but take less time for each,
    so 32 is fastest to the target (2 × 1.0 s); it also ends most accurate."""
    return [
        session_from_accuracies(1, [0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7], seconds=8.0),
        session_from_accuracies(8, [0.91, 0.93, 0.93, 0.94, 0.94, 0.94, 0.94, 0.94], seconds=3.0),
        session_from_accuracies(32, [0.8, 0.95, 0.96, 0.96, 0.97, 0.97, 0.97, 0.97], seconds=1.0),
        session_from_accuracies(128, [0.6, 0.7, 0.8, 0.92, 0.93, 0.93, 0.93, 0.93], seconds=0.6),
        session_from_accuracies(256, [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.91], seconds=0.5),
    ]


def plain(text: str) -> str:
    return plotext.uncolorize(text)


def test_one_group_per_setup_with_optima_and_fit():
    sessions = sweep()
    other = session_from_accuracies(32, [0.95], seconds=1.0)
    other.config = other.config.updated(model="mlp")
    groups = scaling_groups([*sessions, other])
    assert len(groups) == 2
    group = next(g for g in groups if "lenet5" in g.label)
    assert group.optima.fastest_batch_size == 32
    assert group.optima.most_accurate_batch_size == 32
    assert group.fit.b_crit is not None and 8 < group.fit.b_crit < 256
    assert group.fit is not None and group.fit.unreached_batch_sizes == [1]
    text = "\n".join(analysis_lines(group))
    assert "optimal in wall time: batch 32" in text
    assert "optimal in final accuracy: batch 32" in text
    assert "never reached 90%: batch 1" in text
    assert "B_crit" in text and "S_min" in text and "E_min" in text


def test_without_two_reached_sizes_the_text_says_what_the_fit_needs():
    group = scaling_groups(
        [session_from_accuracies(1, [0.5], 1.0), session_from_accuracies(8, [0.95], 1.0)]
    )[0]
    assert group.fit is None
    assert "needs two batch sizes" in "\n".join(analysis_lines(group))


def test_steps_that_do_not_fall_with_batch_size_give_no_critical_batch_size():
    # The quickstart at one lr: 3 epochs at batch 32, 12 at 128 (more steps, not fewer).
    sessions = [
        session_from_accuracies(32, [0.9, 0.93, 0.95], 1.0),
        session_from_accuracies(128, [0.5] * 11 + [0.95], 1.0),
    ]
    group = scaling_groups(sessions)[0]
    text = "\n".join(analysis_lines(group))
    assert "steps to target did not fall with batch size (32, 128)" in text
    assert "B_crit = " not in text and "≈ 0" not in text


def test_charts_mark_runs_that_never_reached_the_target():
    group = scaling_groups(sweep())[0]
    steps, samples, times = (plain(c) for c in render_report(group, width=80, height=16))
    assert steps.startswith("steps to 90% vs batch size")
    assert samples.startswith("samples to 90%")
    assert "never reached target" in steps and "×" in steps
    assert "perfect scaling" in steps and "fit, B_crit" in steps
    assert "fastest to target: batch 32" in times
    for chart in (steps, samples, times):
        assert max(len(line) for line in chart.splitlines()[:-1]) <= 80
        assert "256" in chart  # the batch sizes label the x axis


def test_drawing_works_on_any_plotext_figure():
    """The app draws the same chart into a textual-plotext widget's own figure."""
    from plotext._figure import _figure_class

    figure = _figure_class()
    figure.plotsize(60, 15)
    text = draw_steps_to_target(figure, scaling_groups(sweep())[0], size=(60, 15))
    assert "●" in plain(figure.build())
    assert [e.label for e in text.legend][-1] == "never reached target"


def test_second_table_shows_steps_memory_and_noise_scale_at_the_target_within_80_columns():
    sessions = sweep()
    sessions[1].peak_memory = MemoryPeak(peak_bytes=300 * 2**20, source="cuda_peak_allocated")
    sessions[1].noise_scale = [  # batch 8 reached 90% at epoch 1
        noise_point(0.5, 30.0),
        noise_point(1, 40.0, at_target=True),
        noise_point(2, 61.5),
    ]
    console = Console(width=80, record=True)
    console.print(comparison_view(comparison_rows(sessions)))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "300M" in text and "40 (32–50)" in text  # at the target, not the last estimate
    assert "samples→t" in text and "2,000" in text
    assert "cuda" in text  # what peak memory measures is said


def test_a_missing_noise_scale_says_why_in_words():
    sessions = sweep()
    sessions[1].noise_scale = [noise_point(1, 40.0, at_target=True)]
    note = "the probe would cost 38% of this run (…); raise `noise_scale.time_share`"
    sessions[0].noise_scale_note = note  # batch 1 never reached the target
    sessions[2].config = sessions[2].config.updated(noise_scale={"enabled": False})
    console = Console(width=100, record=True)
    console.print(comparison_view(comparison_rows(sessions)))
    text = console.export_text()
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert rows["1"].rstrip().endswith("t not reached") and rows["32"].rstrip().endswith("off")
    assert "raise `noise_scale.time_share`" in " ".join(text.split())


def test_analysis_compares_the_fitted_critical_batch_with_the_noise_scale_at_the_target():
    sessions = sweep()
    for session, b_noise in zip(sessions[1:4], [40.0, 50.0, 70.0], strict=True):
        epoch = session.summary.epochs_to_target
        session.noise_scale = [noise_point(epoch, b_noise, at_target=True)]
    group = scaling_groups(sessions)[0]
    assert group.fit is not None and group.fit.b_crit is not None
    ratio = max(group.fit.b_crit, 50) / min(group.fit.b_crit, 50)
    text = "\n".join(analysis_lines(group))
    assert "where the runs reached the target: 50 (runs: 40 to 70)" in text
    verdict = "agree within 2×" if ratio <= 2 else "differ by more than 2×"
    assert f"fitted B_crit {group.fit.b_crit:,.0f} and B_noise 50 {verdict} ({ratio:.1f}×)" in text


def test_unstable_or_too_large_noise_scales_are_said_so():
    assert noise_verdict(noise_point(1, 120, spread=1.3), n_train=1000) == ""
    assert noise_verdict(noise_point(1, 120, b_high=None), n_train=1000) == "not yet stable"
    assert noise_verdict(noise_point(1, 120, spread=3), n_train=1000) == "not yet stable"
    too_big = noise_point(1, 2400, spread=1.2)
    assert noise_verdict(too_big, n_train=1000) == "exceeds the training set (1,000)"
    assert noise_interval_text(noise_point(1, 120, b_low=90, b_high=160)) == "120 (90–160)"
    assert noise_interval_text(noise_point(1, 120, b_low=40, b_high=None)) == "120 (40–∞)"


def test_a_noise_scale_far_from_the_fitted_critical_batch_says_why_and_which_to_trust():
    sessions = sweep()
    group = scaling_groups(sessions)[0]
    assert group.fit is not None and group.fit.b_crit is not None
    b_noise = 5 * group.fit.b_crit  # more than 2× apart
    for session in sessions[1:4]:
        epoch = session.summary.epochs_to_target
        session.noise_scale = [noise_point(epoch, b_noise, at_target=True)]
    lines = analysis_lines(scaling_groups(sessions)[0])
    console = Console(width=80, record=True)
    for line in lines:
        console.print(line)  # wrapped by words, as bslab prints it
    assert max(len(line.rstrip()) for line in console.export_text().splitlines()) <= 80
    text = " ".join(" ".join(lines).split())
    assert "differ by more than 2×" in text
    assert "why: the fit used one lr at every batch" in text and "trust B_noise more" in text


def test_a_model_named_like_markup_is_printed_as_named():
    """A user's model factory argument such as ``act="[b]"`` is data in the group's label."""
    from dataclasses import replace

    from rich.text import Text

    group = replace(scaling_groups(sweep())[0], label='nets.py:build(act="[b]", end="[/]")')
    first = Text.from_markup("\n".join(analysis_lines(group))).plain.splitlines()[0]
    assert first.startswith('nets.py:build(act="[b]", end="[/]"), target')
