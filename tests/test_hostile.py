"""The hostile-input corpus in tests/hostile: presets and sessions crafted to break the readers.

Every bad preset ends in exit code 2 with its file and field named, before anything trains.
Every bad session is skipped with a warning naming it, while the good sessions in the same
folder are still compared. ``*.expected.json`` maps each file to the field (or message) its
error must name. Files too large to keep in git (deep nesting, 1 MiB+) are written here.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch
from factories import run_cli, session_from_accuracies
from safetensors.torch import load_file, save_file

from tui_lab.core.storage import save_model

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED_PRESETS: dict[str, str] = json.loads((HOSTILE / "presets.expected.json").read_text())
EXPECTED_SESSIONS: dict[str, str] = json.loads((HOSTILE / "sessions.expected.json").read_text())
DEEP = "[" * 100_000  # a RecursionError in the JSON parser, unless caught
GENERATED_PRESETS = {
    "nested-100k-deep.json": (DEEP, "invalid JSON: nested too deeply"),
    "batch-sizes-a-million.json": (json.dumps({"batch_sizes": [1] * 10**6}), "larger than 1 MiB"),
}


def test_the_corpus_and_its_expectations_agree():
    assert sorted(p.name for p in (HOSTILE / "presets").iterdir()) == sorted(EXPECTED_PRESETS)
    assert sorted(p.name for p in (HOSTILE / "sessions").iterdir()) == sorted(EXPECTED_SESSIONS)


@pytest.mark.parametrize("name", [*EXPECTED_PRESETS, *GENERATED_PRESETS])
def test_every_hostile_preset_exits_2_naming_file_and_field(tmp_path, capsys, name):
    if name in GENERATED_PRESETS:
        text, expected = GENERATED_PRESETS[name]
        preset = tmp_path / name
        preset.write_text(text)
    else:
        preset, expected = HOSTILE / "presets" / name, EXPECTED_PRESETS[name]
    out = tmp_path / "s"
    code, output = run_cli(capsys, "--headless", str(preset), "--out", str(out))
    assert code == 2, output
    assert f"{preset}: {expected}" in output, output
    assert "Traceback" not in output
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("name", EXPECTED_SESSIONS)
def test_every_hostile_session_alone_exits_2_naming_file_and_field(capsys, name):
    session = HOSTILE / "sessions" / name
    code, output = run_cli(capsys, "compare", str(session))
    assert code == 2, output
    assert f"{session}: {EXPECTED_SESSIONS[name]}" in output
    assert "Traceback" not in output


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Every hostile session, two good runs, and a killed run with the best numbers of all."""
    folder = tmp_path / "mixed"
    shutil.copytree(HOSTILE / "sessions", folder)
    (folder / "nested-100k-deep.json").write_text(DEEP)
    save_model(session_from_accuracies(16, [0.5, 0.7, 0.9], 1.0), folder / "good-b16.json")
    save_model(session_from_accuracies(64, [0.4, 0.6, 0.8], 0.5), folder / "good-b64.json")
    killed = session_from_accuracies(256, [0.6, 0.95, 0.99], 0.1).model_copy(
        update={
            "status": "running",
            "pid": 2**22 + 1,  # above Linux's default pid limit: no such process
            "heartbeat": datetime.now(timezone.utc) - timedelta(hours=1),
        }
    )
    save_model(killed, folder / "killed-b256.json")
    return folder


def test_compare_skips_each_bad_session_with_a_warning_and_shows_the_good(mixed_folder, capsys):
    code, output = run_cli(capsys, "compare", str(mixed_folder), "--analysis")
    assert code == 0, output
    assert "Traceback" not in output
    for name in [*EXPECTED_SESSIONS, "nested-100k-deep.json"]:
        assert f"skipped {mixed_folder / name}: " in output, name
    rows = [line for line in output.splitlines() if line.lstrip().startswith("sgd ")]
    assert len(rows) == 3, output  # batch 16, 64 and the killed 256
    killed = next(row for row in rows if " 256 " in row)
    assert "stopped" in killed and "★" not in killed
    assert not any("running" in row for row in rows)
    assert "batch 256" not in output  # no optimum, no fit from a run that never ended


def test_sketch_of_an_all_zero_grid_exits_2(capsys):
    session = HOSTILE / "sessions" / "trajectory-all-zero-grid.json"
    code, output = run_cli(capsys, "sketch", str(session))
    assert code == 2 and "trajectory" in output and "Traceback" not in output


def test_interpolate_refuses_float64_weights_naming_the_file(trained_pair_dir, tmp_path, capsys):
    pair = shutil.copytree(trained_pair_dir, tmp_path / "pair")
    weights = sorted(pair.glob("*.safetensors"))[0]
    save_file({k: v.to(torch.float64) for k, v in load_file(weights).items()}, weights)
    a, b = sorted(pair.glob("*.json"))
    code, output = run_cli(capsys, "interpolate", str(a), str(b), "--points", "3")
    assert code == 2, output
    assert str(weights) in output and "float64" in output and "Traceback" not in output
