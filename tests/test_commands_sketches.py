"""The sketch commands as users meet them: paraboloid, sketch, interpolate and their errors."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from factories import assert_told_apart
from rich.console import Console

from tui_lab.cli.headless import run_paraboloid_headless
from tui_lab.cli.main import main
from tui_lab.core.storage import load_any_session, load_session
from tui_lab.report.interpolation import sharpness_lines
from tui_lab.schema import Interpolation, ParaboloidPreset

FAST_LAB = ["--optimizers", "sgd,rprop", "--batch-sizes", "4,full", "--epochs", "5"]


@pytest.fixture(scope="module")
def two_runs(trained_pair_dir) -> tuple[Path, Path]:
    """A small-batch and a full-batch run of the same model on the same data, with weights."""
    out = trained_pair_dir
    small, full = sorted(out.glob("*.json"), key=lambda p: load_session(p).config.batch_size)
    return small, full


def run_cli(capsys, *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def edited_copy(session: Path, folder: Path, **changes) -> Path:
    """The session JSON with top-level or ``config.``-prefixed fields changed, in another folder."""
    data = json.loads(session.read_text())
    for key, value in changes.items():
        target = data["config"] if key.startswith("config_") else data
        target[key.removeprefix("config_")] = value
    folder.mkdir(exist_ok=True)
    copy = folder / session.name
    copy.write_text(json.dumps(data))
    return copy


def test_paraboloid_prints_one_panel_per_batch_size_and_a_distance_table(tmp_path, capsys):
    code, out = run_cli(capsys, "paraboloid", *FAST_LAB, "--width", 100, "--out", tmp_path)
    assert code == 0
    panel_titles = next(line for line in out.splitlines() if "batch 4:" in line)
    assert "batch full:" in panel_titles  # side by side
    assert "b=4" in out and "b=full" in out and "rprop lr=0.05" in out
    assert_told_apart(out, ["sgd lr=0.5 b=4", "rprop lr=0.05 b=4"])  # piped: no colour
    (saved,) = tmp_path.glob("*.json")
    session = load_any_session(saved)
    assert len(session.paths) == 4 and session.preset.epochs == 5


def test_paraboloid_flags_override_a_preset_file(tmp_path, capsys):
    preset = tmp_path / "lab.json"
    preset.write_text(json.dumps({"kind": "paraboloid", "noise": 0, "epochs": 3}))
    code, out = run_cli(capsys, "paraboloid", preset, "--optimizers", "adam", "--lr", "0.2")
    assert code == 0
    assert "adam lr=0.2" in out and "after 3 epochs" in out


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--optimizers", "adadelta"], "--optimizers: optimizer 'adadelta' is not offered"),
        (["--condition-number", "0.5"], "--condition-number: Input should be greater than"),
        (["--batch-sizes", "1", "--epochs", "9999"], "batch size 1 takes"),
        (["--width", "20"], "--width: needs at least"),
    ],
)
def test_paraboloid_bad_flags_exit_2_naming_the_flag(capsys, flags, expected):
    code, out = run_cli(capsys, "paraboloid", *flags)
    assert code == 2
    assert expected in out and "Traceback" not in out


def test_paraboloid_refuses_a_training_preset(tmp_path, capsys):
    preset = tmp_path / "train.json"
    preset.write_text(json.dumps({"dataset": "digits"}))
    code, out = run_cli(capsys, "paraboloid", preset)
    assert code == 2
    assert f"{preset}: kind: a training preset" in out


def test_headless_paraboloid_saves_the_session_and_prints_the_sketch(tmp_path):
    preset = ParaboloidPreset(kind="paraboloid", batch_sizes=[8], epochs=4, name="lab")
    printed = StringIO()
    code = run_paraboloid_headless(preset, tmp_path, Console(file=printed, width=90))
    assert code == 0
    (saved,) = tmp_path.glob("lab-*.json")
    assert str(saved) in printed.getvalue().replace("\n", "")
    assert "batch 8:" in printed.getvalue() and "adam lr=0.1" in printed.getvalue()


def test_sketch_prints_training_sessions_side_by_side(two_runs, capsys):
    code, out = run_cli(capsys, "sketch", *two_runs, "--width", 100)
    assert code == 0
    titles = next(line for line in out.splitlines() if "sgd b=16" in line)
    assert "sgd b=full" in titles and titles.count("PCA") == 2


def test_sketch_prints_a_saved_paraboloid_session(tmp_path, capsys):
    run_cli(capsys, "paraboloid", *FAST_LAB, "--out", tmp_path)
    (saved,) = tmp_path.glob("*.json")
    code, out = run_cli(capsys, "sketch", saved, "--width", 100)
    assert code == 0
    assert "batch full:" in out and "Distance to the minimum after 5 epochs" in out


def test_sketch_skips_a_session_without_a_sketch_and_fails_if_none_has_one(
    two_runs, tmp_path, capsys
):
    bare = edited_copy(two_runs[0], tmp_path / "bare", trajectory=None)
    code, out = run_cli(capsys, "sketch", bare, two_runs[1])
    assert code == 0 and f"{bare}: no trajectory sketch" in out
    code, out = run_cli(capsys, "sketch", bare)
    assert code == 2 and "none of these sessions has a sketch" in out
    code, out = run_cli(capsys, "sketch", tmp_path / "missing.json")
    assert code == 2 and "missing.json: file not found" in out


def test_interpolate_plots_the_line_and_tells_the_sharpness(two_runs, tmp_path, capsys):
    out_file = tmp_path / "line.json"
    code, out = run_cli(
        capsys, "interpolate", *two_runs, "--points", 7, "--device", "cpu", "--out", out_file
    )
    assert code == 0
    assert "sgd b=16" in out and "sgd b=full" in out
    assert "training loss change at α ± 0.5" in out
    assert_told_apart(out, ["train log10 loss", "val log10 loss", "train accuracy", "val accuracy"])
    # Two full-batch steps are far from a minimum: no sharpness verdict is drawn for it.
    assert "b = sgd b=full lr=0.05" in out and "not a minimum along this line" in out
    interp = Interpolation.model_validate_json(out_file.read_text())
    assert {-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0} <= set(interp.alphas)
    # At α = 0 and 1 the line passes through the two solutions: their own validation accuracy.
    for session_path, alpha in zip(two_runs, (0.0, 1.0), strict=True):
        final = load_session(session_path).summary.final_accuracy
        assert interp.val_accuracy[interp.alphas.index(alpha)] == pytest.approx(final, abs=1e-4)


def test_interpolate_refuses_sessions_of_different_models_naming_file_and_field(
    two_runs, tmp_path, capsys
):
    other = edited_copy(two_runs[1], tmp_path / "other", config_model="cnn")
    code, out = run_cli(capsys, "interpolate", two_runs[0], other)
    assert code == 2
    assert f"{other}: config.model: 'cnn' here but 'mlp' in {two_runs[0]}" in out


def test_interpolate_needs_the_weights_beside_each_session(two_runs, tmp_path, capsys):
    moved = edited_copy(two_runs[1], tmp_path / "moved")  # JSON copied without its weights
    code, out = run_cli(capsys, "interpolate", two_runs[0], moved)
    assert code == 2 and "no weights file beside this session" in out
    unsaved = edited_copy(two_runs[1], tmp_path / "unsaved", weights_file=None)
    code, out = run_cli(capsys, "interpolate", two_runs[0], unsaved)
    assert code == 2 and f"{unsaved}: weights_file: no final weights were saved" in out


def test_interpolate_refuses_too_few_points(two_runs, capsys):
    code, out = run_cli(capsys, "interpolate", *two_runs, "--points", 1)
    assert code == 2 and "--points: must be between 2 and" in out


def test_interpolate_refuses_a_paraboloid_session(two_runs, tmp_path, capsys):
    run_cli(capsys, "paraboloid", *FAST_LAB, "--out", tmp_path)
    (lab,) = tmp_path.glob("*.json")
    code, out = run_cli(capsys, "interpolate", two_runs[0], lab)
    assert code == 2 and "a paraboloid session, not a training run" in out


def test_the_sharper_of_two_minima_is_named() -> None:
    alphas = [-0.5, 0.0, 0.5, 1.0, 1.5]
    losses = [0.3, 0.1, 0.5, 0.1, 2.1]  # a: mean rise 0.3, b: mean rise 1.2
    interp = Interpolation(
        session_a="a",
        session_b="b",
        label_a="sgd b=8",
        label_b="sgd b=full",
        alphas=alphas,
        train_loss=losses,
        train_accuracy=[0.9] * 5,
        val_loss=losses,
        val_accuracy=[0.9] * 5,
        train_samples=10,
        val_samples=10,
    )
    assert sharpness_lines(interp)[-1].startswith(
        "  → b sits in the sharper minimum: its loss rises 4×"
    )


def test_no_sharpness_is_read_off_a_line_not_measured_either_side() -> None:
    alphas = [0.0, 0.45, 1.0, 2.0]  # nothing at -0.5 or 1.5; 0.45 is near 0.5, not at it
    losses = [0.1, 0.3, 0.1, 2.1]
    interp = Interpolation(
        session_a="a",
        session_b="b",
        label_a="sgd b=8",
        label_b="sgd b=full",
        alphas=alphas,
        train_loss=losses,
        train_accuracy=[0.9] * 4,
        val_loss=losses,
        val_accuracy=[0.9] * 4,
        train_samples=10,
        val_samples=10,
    )
    text = "\n".join(sharpness_lines(interp))
    assert "a = sgd b=8: not measured at α=-0.5, 0.5" in text
    assert "b = sgd b=full: not measured at α=0.5, 1.5" in text
    assert "sharper minimum" not in text
