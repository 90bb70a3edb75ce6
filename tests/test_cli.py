"""The command line as users and scripts meet it: exit codes, one-line errors, files written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from factories import as_at_a_terminal, run_cli, write

from tui_lab.cli.main import main
from tui_lab.core.storage import load_session


def test_headless_writes_one_session_per_run_and_prints_the_table(tmp_path, tiny_preset, capsys):
    preset = write(tmp_path / "p.json", tiny_preset.model_dump_json())
    code, out = run_cli(capsys, "--headless", str(preset), "--out", str(tmp_path / "s"))
    assert code == 0
    files = sorted((tmp_path / "s").glob("*.json"))
    assert len(files) == 2
    sessions = [load_session(f) for f in files]
    assert {s.status for s in sessions} == {"completed"}
    assert {s.config.batch_size for s in sessions} == {32, 160}
    assert "s/ep" in out and "×time" in out and "ep→t" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "invalid JSON"),
        ({"epochs": "ten"}, "epochs"),
        ({"batch_sizes": [0]}, "batch_sizes[0]"),
        ({"optimizer": {"name": "sgd", "lr": -0.1}}, "optimizer.lr"),
        ({"optimizer": {"name": "sgdd"}}, "optimizer.name: Input should be 'sgd', "),
        ({"optimizer": {"name": "sgdd"}}, "or 'adamw' (got 'sgdd')"),
        ({"dataset": "imagenet"}, "(got 'imagenet')"),
        ({"model": "resnet"}, "model"),
        ({"epochs": 1, "colour": "red"}, "colour: unknown field"),
        ({"batch_sizes": [100000], "device": "cpu"}, "larger than the training set"),
        ({"device": "cuda:7"}, "available: cpu"),
    ],
)
def test_bad_presets_exit_2_naming_file_and_field(tmp_path, capsys, content, expected):
    preset = write(tmp_path / "bad.json", content)
    code, out = run_cli(capsys, "--headless", str(preset), "--out", str(tmp_path / "s"))
    assert code == 2
    assert "bad.json" in out and expected in out
    assert "Traceback" not in out
    assert not list((tmp_path / "s").glob("*.json"))


def test_missing_preset_file_exits_2(tmp_path, capsys):
    code, out = run_cli(capsys, "--headless", str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json" in out and "not found" in out


def test_unwritable_output_folder_exits_2_before_training(tmp_path, tiny_preset, capsys):
    preset = write(tmp_path / "p.json", tiny_preset.model_dump_json())
    blocker = write(tmp_path / "file", "x")
    code, out = run_cli(capsys, "--headless", str(preset), "--out", str(blocker / "sub"))
    assert code == 2 and "cannot write there" in out


@pytest.mark.parametrize("flag", [["--no-such-flag"], ["--parallel", "0"], ["--parallel", "x"]])
def test_bad_flag_exits_2(capsys, flag):
    with pytest.raises(SystemExit) as info:
        main(["--headless", *flag])
    assert info.value.code == 2


def test_compare_skips_broken_files_in_a_folder(tmp_path, tiny_preset, capsys):
    preset = write(tmp_path / "p.json", tiny_preset.model_dump_json())
    assert run_cli(capsys, "--headless", str(preset), "--out", str(tmp_path / "s"))[0] == 0
    write(tmp_path / "s" / "broken.json", "{")
    code, out = run_cli(capsys, "compare", str(tmp_path / "s"), "--sort", "time")
    assert code == 0
    assert "skipped" in out and "broken.json" in out
    assert "digits/mlp" in out and out.count(" sgd ") == 2


def test_compare_of_a_session_from_a_newer_bslab_exits_2(tmp_path, capsys):
    future = write(tmp_path / "future.json", {"schema_version": 9, "kind": "train"})
    code, out = run_cli(capsys, "compare", str(future))
    assert code == 2 and "newer bslab" in out and "schema_version" in out


def test_schema_export_is_json_schema(tmp_path, capsys):
    code, out = run_cli(capsys, "schema", "preset")
    schema = json.loads(out)
    assert code == 0 and "batch_sizes" in json.dumps(schema)
    assert run_cli(capsys, "schema", "session", "--out", str(tmp_path / "s.json"))[0] == 0
    assert "epochs" in json.loads((tmp_path / "s.json").read_text())["properties"]


@pytest.mark.parametrize("form", ["csv", "json", "markdown"])
def test_compare_writes_one_row_per_run_with_every_summary_field(tmp_path, capsys, form):
    from factories import make_session

    from tui_lab.core.storage import save_model
    from tui_lab.schema import Summary

    for batch in (128, 8, 32):  # written out of order: rows come in batch order
        save_model(make_session(batch), tmp_path / f"b{batch}.json")
    code, out = run_cli(capsys, "compare", str(tmp_path), "--format", form)
    assert code == 0
    if form == "json":
        rows = json.loads(out)
    elif form == "csv":
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(out)))
    else:
        lines = out.splitlines()
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        rows = [
            dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines[2:]
        ]
    assert [str(row["batch"]) for row in rows] == ["8", "32", "128"]
    assert set(Summary.model_fields) <= set(rows[0])
    assert {str(row["status"]) for row in rows} == {"completed"}


def test_ctrl_c_saves_every_running_run_as_interrupted_and_exits_130(tmp_path, tiny_preset):
    long = tiny_preset.updated(epochs=500, batch_sizes=[1, 2], train_subset=400)
    preset = write(tmp_path / "p.json", long.model_dump_json())
    out = tmp_path / "s"
    env = {**os.environ, "BSLAB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tui_lab", "--headless", str(preset), "--out", str(out)]
    cmd += ["--parallel", "2"]  # both runs train at once, in two worker processes
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=as_at_a_terminal
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = list(out.glob("*.json"))
        if len(files) == 2 and all(load_session(f).epochs for f in files):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, output
    sessions = [load_session(f) for f in out.glob("*.json")]
    assert [s.status for s in sessions] == ["interrupted", "interrupted"]
    assert all(len(s.epochs) >= 1 for s in sessions)
