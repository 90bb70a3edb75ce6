"""The command line as users and scripts meet it: exit codes, one-line errors, files written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import as_at_a_terminal, run_cli, small_sweep, write

from tui_lab.cli.main import main
from tui_lab.core.storage import load_session
from tui_lab.schema.train import MAX_EPOCHS


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


def test_the_headless_summary_fits_80_columns_when_piped(tmp_path, capsys, monkeypatch):
    """Piped, the console is 80 columns: every line fits, wrapped between words."""
    from rich.cells import cell_len

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    preset = small_sweep(name="quickstart", batch_sizes=[8, 32, "full"], target_accuracy=0.3)
    code, out = run_cli(
        capsys, "--headless", str(write(tmp_path / "p.json", preset.model_dump_json()))
    )
    assert code == 0
    assert max(cell_len(line) for line in out.splitlines()) <= 80, out
    words = out.split()
    for path in Path("sessions").glob("*.json"):
        assert str(path) in words  # a path is one word: moved whole to the next line
    sentence = "where the run reached the target, which predicts the critical batch size"
    assert sentence in " ".join(words)


def test_a_long_statement_wraps_by_words_under_its_first_line():
    from rich.console import Console

    from tui_lab.cli.compare import print_statement

    console = Console(width=40, record=True)
    print_statement(
        console, "    [yellow]~ but batch 8 was timed on a busy machine[/] (other work)"
    )
    assert console.export_text().splitlines() == [
        "    ~ but batch 8 was timed on a busy",
        "      machine (other work)",
    ]


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--headles", "x.json"], "unrecognized arguments: --headles"),
        (["compare", "--sor", "batch", "x"], "unrecognized arguments: --sor"),
        (["compre"], "unknown command 'compre'; did you mean 'compare'?"),
        (["lr_find"], "unknown command 'lr_find'; did you mean 'lr-find'?"),
        (["frobnicate"], "unknown command 'frobnicate'; bslab --help lists the commands"),
    ],
)
def test_the_cli_takes_only_what_it_is_given(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_preset_is_not_taken_for_a_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "compre", "{not json")  # a file is a preset, whatever its name
    for name in ("nope.json", "sub/compre"):
        code, out = run_cli(capsys, name, "--headless")
        assert code == 2 and f"{name}: file not found" in out
    code, out = run_cli(capsys, "compre", "--headless")
    assert code == 2 and "compre: invalid JSON" in out


def test_no_command_accepts_a_prefix_of_an_option(monkeypatch):
    """Every parser of every command is built with allow_abbrev=False."""
    import argparse
    import importlib

    from tui_lab.cli import COMMANDS

    seen: list[argparse.ArgumentParser] = []

    def record(self, args=None, namespace=None):
        seen.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", record)
    for name in COMMANDS:
        module = importlib.import_module(f"tui_lab.cli.{name.replace('-', '_')}")
        with pytest.raises(SystemExit):
            module.main([])
    with pytest.raises(SystemExit):
        main(["x.json"])
    assert len(seen) == len(COMMANDS) + 1
    assert not [parser.prog for parser in seen if parser.allow_abbrev]


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
    # Runs that cannot end before the signal: it comes once both have saved an epoch.
    long = tiny_preset.updated(epochs=MAX_EPOCHS, batch_sizes=[1, 2])
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


def test_compare_markdown_rounds_each_number_as_the_table_does(tmp_path, capsys):
    from factories import make_session

    from tui_lab.core.storage import save_model

    save_model(make_session(8, seconds_per_epoch=4.123456), tmp_path / "b8.json")
    save_model(make_session(32, seconds_per_epoch=1.51234, rate=0.4), tmp_path / "b32.json")
    save_model(make_session(128, seconds_per_epoch=0.004), tmp_path / "b128.json")
    _, table = run_cli(capsys, "compare", str(tmp_path))
    _, markdown = run_cli(capsys, "compare", str(tmp_path), "--format", "markdown")
    lines = markdown.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]
    table_rows = [line.split() for line in table.splitlines() if line.split()[:1] == ["sgd"]]
    for row, cells in zip(rows, table_rows, strict=True):  # both in batch order
        # optim lr batch status s/ep ×time ep→t s→t best final, as the table prints them
        shown = [cells[1], cells[4], cells[7].rstrip("★"), cells[8], cells[9].rstrip("★")]
        names = ["lr", "seconds_per_epoch", "seconds_to_target", "best_accuracy"]
        assert [row[name] for name in [*names, "final_accuracy"]] == shown
    assert rows[0]["seconds_per_epoch"] == "4.12" and "4.123456" not in markdown
    assert rows[1]["epochs_to_target"] == "never"  # as the table says it, not an empty cell
    assert rows[2]["train_seconds"] == "0.0160"  # 4 epochs of 0.004 s: never rounded to 0.0


def test_compare_of_a_folder_that_does_not_exist_says_so(tmp_path, capsys):
    code, out = run_cli(capsys, "compare", str(tmp_path / "sesions"))
    assert code == 2 and f"{tmp_path / 'sesions'}: no such file or folder" in out


def test_compare_and_its_tui_never_import_torch(tmp_path):
    """Reading thousands of sessions must not first wait a second or more for torch: the table,
    the records, the charts of ``compare`` and its screen in the app (until the table is shown)
    come from the files alone; and the table alone does not load the charts' plotext."""
    from factories import make_session

    from tui_lab.core.storage import save_model

    for batch in (8, 32):
        save_model(make_session(batch), tmp_path / f"b{batch}.json")
    script = f"""
import asyncio, sys
from pathlib import Path
from tui_lab.cli.main import main

for extra in ([], ['--analysis'], ['--format', 'json']):
    main(['compare', {str(tmp_path)!r}, *extra])
    if not extra:
        print('the table imported plotext:', 'plotext' in sys.modules)

async def compare_screen():
    from tui_lab.app.app import BslabApp
    from tui_lab.app.screens.compare import CompareScreen

    app = BslabApp(compare_paths=[Path({str(tmp_path)!r})])
    async with app.run_test() as pilot:
        while not (isinstance(app.screen, CompareScreen) and app.screen.ready):
            await pilot.pause(0.01)
        assert app.screen.picker.option_count == 2

asyncio.run(compare_screen())
print('imported:', sorted(m for m in ('torch', 'torchvision') if m in sys.modules))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "imported: []"
    assert "the table imported plotext: False" in done.stdout  # charts only with --analysis
