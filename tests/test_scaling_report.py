"""The scaling analysis as users read it: optima, the fit, and charts that show unreached runs."""

from __future__ import annotations

import plotext
from factories import session_from_accuracies
from rich.console import Console

from tui_lab.report.comparison import comparison_rows, comparison_view
from tui_lab.report.scaling import (
    analysis_lines,
    draw_steps_to_target,
    render_report,
    scaling_groups,
)
from tui_lab.schema.analysis import MemoryPeak, NoiseScalePoint


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


def test_second_table_shows_steps_memory_and_noise_scale_within_80_columns():
    sessions = sweep()
    sessions[1].peak_memory = MemoryPeak(peak_bytes=300 * 2**20, source="cuda_peak_allocated")
    sessions[1].noise_scale = [
        NoiseScalePoint(epoch=1, step=10, b_simple=40.0, grad_sq=1.0, trace_sigma=40.0),
        NoiseScalePoint(epoch=2, step=20, b_simple=61.5, grad_sq=1.0, trace_sigma=61.5),
    ]
    console = Console(width=80, record=True)
    console.print(comparison_view(comparison_rows(sessions)))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "300M" in text and "61.5" in text  # the last estimate, not the first
    assert "samples→t" in text and "2,000" in text
    assert "cuda" in text  # what peak memory measures is said
