"""The analysis subcommands as a user runs them: find-batch, lr-find and compare's analysis."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from factories import assert_told_apart, run_cli, write

from tui_lab.analysis import batch_finder
from tui_lab.run import recorder
from tui_lab.schema.analysis import BatchFinderResult


@pytest.fixture
def preset_file(tmp_path, tiny_preset) -> Path:
    return write(tmp_path / "p.json", tiny_preset.model_dump_json())


def test_find_batch_reports_each_size_and_saves_json(tmp_path, preset_file, capsys):
    saved = tmp_path / "out" / "finder.json"
    saved.parent.mkdir()
    code, out = run_cli(
        capsys, "find-batch", str(preset_file), "--batch-size-cap", "40", "--json", str(saved)
    )
    assert code == 0
    assert "samples/s" in out and "out of memory" not in out
    assert "Largest batch that fits on cpu: 40" in out
    result = BatchFinderResult.model_validate(json.loads(saved.read_text()))
    assert result.largest_batch_size == 40 and result.reached_limit
    assert [t.batch_size for t in result.trials] == [1, 2, 4, 8, 16, 32, 40]


def test_find_batch_survives_running_out_of_memory(preset_file, capsys, monkeypatch):
    def trial_that_fits_up_to_24(*args, **kwargs):
        def trial(batch_size: int) -> float:
            if batch_size > 24:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return 10.0 * batch_size

        return trial

    monkeypatch.setattr(batch_finder, "make_training_trial", trial_that_fits_up_to_24)
    monkeypatch.setattr(batch_finder, "free_memory", lambda: None)
    code, out = run_cli(capsys, "find-batch", str(preset_file))
    assert code == 0
    assert out.count("out of memory") >= 3  # 32, 28, 26, 25 failed; the search went on
    assert "Largest batch that fits on cpu: 24 (25 ran out of memory)" in out


@pytest.mark.parametrize("load", [0.5, 99.0])
def test_find_batch_flags_throughput_measured_on_a_busy_machine(
    preset_file, capsys, monkeypatch, load
):
    """The machine's load decides (the CPU-share rule is switched off: this machine is shared)."""
    monkeypatch.setattr(recorder, "load_average", lambda: load)
    monkeypatch.setattr(recorder, "MIN_CPU_SHARE", 0.0)
    code, out = run_cli(capsys, "find-batch", str(preset_file), "--batch-size-cap", "4")
    assert code == 0
    busy = load > 2
    assert ("~ timed on a busy machine" in out) == busy
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+[124]\s+\d", line)]
    assert len(rows) == 3 and all(row[2].endswith("~") == busy for row in rows)


def test_find_batch_on_a_missing_device_exits_2(preset_file, capsys):
    code, out = run_cli(capsys, "find-batch", str(preset_file), "--device", "cuda:7")
    assert code == 2 and "--device" in out and "available: cpu" in out


def test_lr_find_suggests_a_rate_per_batch_size_beside_the_preset_rule(preset_file, capsys):
    code, out = run_cli(capsys, "lr-find", str(preset_file), "--steps", "30")
    assert code == 0
    assert "smoothed training loss vs learning rate" in out
    assert_told_apart(out, ["b=32", "b=160"])
    assert "Suggested learning rates" in out and "preset (none)" in out
    table = out[out.index("Suggested learning rates") :]
    assert " 32 " in table and " 160 " in table  # every batch size of the preset


def test_lr_find_rejects_a_batch_larger_than_the_data(preset_file, capsys):
    code, out = run_cli(capsys, "lr-find", str(preset_file), "--batch-size", "1000")
    assert code == 2 and "--batch-size" in out and "160 samples" in out


def test_compare_names_the_optimal_batch_sizes_and_draws_the_charts(tmp_path, preset_file, capsys):
    sessions = tmp_path / "s"
    assert run_cli(capsys, "--headless", str(preset_file), "--out", str(sessions))[0] == 0
    code, out = run_cli(capsys, "compare", str(sessions))
    assert code == 0
    assert "optimal in wall time: batch" in out and "optimal in final accuracy: batch" in out
    assert "steps to 30%" not in out  # charts only when asked
    code, out = run_cli(capsys, "compare", str(sessions), "--analysis")
    assert code == 0
    assert "steps to 30% vs batch size" in out and "samples to 30%" in out
    assert "seconds per epoch and to 30%" in out
    assert "\x1b[" not in out  # no colour codes when the output is not a terminal
    assert_told_apart(out, ["s/epoch", "s to target"])  # so marks, not colours, tell apart
    assert_told_apart(out, ["perfect scaling", "runs"])
