"""The hostile-input corpus in tests/hostile: presets and sessions crafted to break the readers.

Every bad preset ends in exit code 2 with its file and field named, before anything trains.
Every bad session is skipped with a warning naming it, while the good sessions in the same
folder are still compared. Every session in ``shown/`` is valid but at an extreme (a time
without a zone, zero durations, values no chart can scale, escape sequences in its text):
every reader shows it, and says what it could not draw. ``*.expected.json`` maps each file to
the field (or message) its error must name, or to why it is in the corpus. Files too large to
keep in git (deep nesting, 1 MiB+), and what git cannot hold (named pipes, links), are made
here.

No output, whatever the input, holds a traceback, a character a terminal would obey, or a
name of pydantic's own (``constrained-float``) where the user's field belongs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch
from factories import CompareHost, Host, make_session, run_cli, session_from_accuracies, sketched
from safetensors.torch import load_file, save_file

from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.sketches import SketchesScreen, SketchPlot
from tui_lab.core.storage import LoadedSession, load_session, save_model
from tui_lab.report.plotting import UNDRAWABLE

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED_PRESETS: dict[str, str] = json.loads((HOSTILE / "presets.expected.json").read_text())
EXPECTED_SESSIONS: dict[str, str] = json.loads((HOSTILE / "sessions.expected.json").read_text())
EXPECTED_SHOWN: dict[str, str] = json.loads((HOSTILE / "shown.expected.json").read_text())
# What must never reach the user: a traceback, pydantic's names for union members and
# validators, and characters a terminal obeys (ESC, BEL, ... ; newlines and tabs are text).
LEAKS = re.compile(
    r"Traceback|constrained-|function-(after|before|wrap)|tagged-union|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
LIMIT_S = 60  # a reader that hangs (on a named pipe) fails here instead of stalling the suite
DEEP = "[" * 100_000  # a RecursionError in the JSON parser, unless caught
GENERATED_PRESETS = {
    "nested-100k-deep.json": (DEEP, "invalid JSON: nested too deeply"),
    "batch-sizes-a-million.json": (json.dumps({"batch_sizes": [1] * 10**6}), "larger than 1 MiB"),
}


def assert_clean(output: str) -> None:
    leak = LEAKS.search(output)
    assert leak is None, f"{leak.group()!r} in:\n{output}"


def bslab(*argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """bslab in its own process, for what could hang or needs a real pipe: killed at LIMIT_S."""
    env = {**os.environ, "BSLAB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "tui_lab", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        **kwargs,
    )


def test_the_corpus_and_its_expectations_agree():
    assert sorted(p.name for p in (HOSTILE / "presets").iterdir()) == sorted(EXPECTED_PRESETS)
    assert sorted(p.name for p in (HOSTILE / "sessions").iterdir()) == sorted(EXPECTED_SESSIONS)
    assert sorted(p.name for p in (HOSTILE / "shown").iterdir()) == sorted(EXPECTED_SHOWN)


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
    assert_clean(output)
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("name", EXPECTED_SESSIONS)
def test_every_hostile_session_alone_exits_2_naming_file_and_field(capsys, name):
    session = HOSTILE / "sessions" / name
    code, output = run_cli(capsys, "compare", str(session))
    assert code == 2, output
    assert f"{session}: {EXPECTED_SESSIONS[name]}" in output
    assert_clean(output)


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
    assert_clean(output)
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


@pytest.fixture
def shown_folder(tmp_path) -> Path:
    """Every session at an extreme, beside two ordinary runs."""
    folder = shutil.copytree(HOSTILE / "shown", tmp_path / "shown")
    save_model(session_from_accuracies(16, [0.5, 0.7, 0.9], 1.0), folder / "good-b16.json")
    save_model(session_from_accuracies(64, [0.4, 0.6, 0.8], 0.5), folder / "good-b64.json")
    return folder


@pytest.mark.parametrize(
    "flags",
    [[], ["--analysis"], ["--format", "json"], ["--format", "csv"], ["--format", "markdown"]],
)
def test_every_reader_shows_every_session_at_an_extreme(shown_folder, capsys, flags):
    code, output = run_cli(capsys, "compare", str(shown_folder), *flags)
    assert code == 0, output
    assert_clean(output)
    assert "skipped" not in output
    if "--format" in flags:
        for name in [*EXPECTED_SHOWN, "good-b16.json"]:
            assert str(shown_folder / name) in output, name


def test_escape_sequences_reach_csv_and_markdown_as_visible_escapes(capsys):
    session = HOSTILE / "shown" / "terminal-controls-in-text.json"
    for form in ("csv", "markdown"):
        code, output = run_cli(capsys, "compare", str(session), "--format", form)
        assert code == 0 and r"cpu\x1b[2J" in output, output
        assert_clean(output)


@pytest.mark.parametrize(
    "name",
    ["trajectory-1e300.json", "trajectory-max-float.json", "trajectory-subnormal-grid.json"],
)
def test_sketch_of_values_no_chart_can_scale_says_so_beside_a_good_one(tmp_path, capsys, name):
    good = tmp_path / "good.json"
    save_model(sketched(make_session(8, rate=1.2)).session, good)
    code, output = run_cli(capsys, "sketch", str(HOSTILE / "shown" / name), str(good))
    assert code == 0, output
    assert output.count(UNDRAWABLE) == 1
    assert_clean(output)


def test_a_running_session_whose_pid_no_platform_has_is_shown_stopped(tmp_path, capsys):
    """A pid beyond the platform's range (os.kill overflows) is no process: the run is dead."""
    session = session_from_accuracies(32, [0.5, 0.9], 1.0)
    session.environment = session.environment.updated(host=socket.gethostname())
    session.status, session.pid = "running", 2**40
    session.heartbeat = datetime.now(timezone.utc)
    save_model(session, tmp_path / "running.json")
    for flags in ([], ["--format", "csv"]):
        code, output = run_cli(capsys, "compare", str(tmp_path), *flags)
        assert code == 0 and "stopped" in output, output
        assert_clean(output)


def test_a_named_pipe_as_preset_is_refused_at_once(tmp_path):
    fifo = tmp_path / "preset.json"
    os.mkfifo(fifo)
    result = bslab("--headless", str(fifo), "--out", str(tmp_path / "s"))
    assert result.returncode == 2, result.stderr
    assert f"{fifo}: is a named pipe (FIFO), not a regular file" in result.stderr
    assert_clean(result.stdout + result.stderr)


@pytest.mark.parametrize(
    "command", [["compare"], ["compare", "--format", "json"], ["compare", "--analysis"]]
)
def test_a_folder_with_a_pipe_a_folder_and_a_link_named_json_shows_the_good_ones(tmp_path, command):
    folder = tmp_path / "sessions"
    folder.mkdir()
    good = sketched(make_session(16, rate=1.2)).session
    save_model(good, folder / "good.json")
    os.mkfifo(folder / "pipe.json")
    (folder / "folder.json").mkdir()
    (folder / "link.json").symlink_to(folder / "pipe.json")
    result = bslab(*command, str(folder))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name, kind in [
        ("pipe", "a named pipe (FIFO)"),
        ("folder", "a folder"),
        ("link", "a named pipe (FIFO)"),
    ]:
        assert f"skipped {folder / name}.json: is {kind}, not a regular file" in output
    assert_clean(output)


def test_a_session_file_that_is_a_pipe_is_refused_by_every_command(tmp_path):
    fifo = tmp_path / "a.json"
    os.mkfifo(fifo)
    for command in (["compare"], ["sketch"], ["interpolate", str(fifo)]):
        result = bslab(*command, str(fifo))
        assert result.returncode == 2, (command, result.stderr)
        assert "is a named pipe (FIFO)" in result.stderr
        assert_clean(result.stdout + result.stderr)


def test_compare_into_a_closed_pipe_ends_quietly(shown_folder):
    """``bslab compare … | head -1``: the reader leaves; no BrokenPipeError traceback."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for flags in ([], ["--format", "csv"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui_lab", "compare", str(shown_folder), *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()  # before bslab has written the rest
        errors = proc.communicate(timeout=LIMIT_S)[1]
        assert proc.returncode in (0, 1), errors
        assert_clean(errors)


def test_interpolate_refuses_weights_linked_from_outside_the_folder(
    trained_pair_dir, tmp_path, capsys
):
    pair = shutil.copytree(trained_pair_dir, tmp_path / "pair")
    weights = sorted(pair.glob("*.safetensors"))[0]
    outside = tmp_path / "elsewhere.safetensors"
    weights.rename(outside)
    weights.symlink_to(outside)
    a, b = sorted(pair.glob("*.json"))
    code, output = run_cli(capsys, "interpolate", str(a), str(b), "--points", "3")
    assert code == 2, output
    assert f"{weights}: is a symbolic link" in output
    assert_clean(output)


def test_the_app_shows_every_session_at_an_extreme_and_sketches_what_it_can(shown_folder):
    """The compare screen lists them all; a sketch plotext cannot scale says so in its panel."""
    extreme = [
        LoadedSession(path, load_session(path))
        for path in sorted(shown_folder.glob("trajectory-*.json"))
    ]

    async def scenario():
        app = CompareHost([shown_folder])
        async with app.run_test(size=(120, 40)) as pilot:
            while not (isinstance(app.screen, CompareScreen) and app.screen.ready):
                await pilot.pause(0.05)
            assert app.screen.picker.option_count == len(EXPECTED_SHOWN) + 2
            assert not any("skipped" in note for note in app.notes)
        sketches = Host(lambda: SketchesScreen([*extreme, sketched(make_session(8))]))
        async with sketches.run_test(size=(120, 36)) as pilot:
            await pilot.pause(0.2)
            pictures = [str(plot.render()) for plot in sketches.screen.query(SketchPlot)]
            assert sum(UNDRAWABLE in picture for picture in pictures) == len(extreme)

    asyncio.run(scenario())
