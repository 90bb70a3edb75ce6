"""The user's own model: named by a preset, checked before the first run, rebuilt by workers,
recorded by the session, never imported by a reader of sessions."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tui_lab.analysis.interpolation import compute
from tui_lab.cli.main import main
from tui_lab.core.storage import load_preset, load_session, load_sessions
from tui_lab.core.user_model import build_user_model, stacking_blocker_of
from tui_lab.errors import BadInput
from tui_lab.report.scaling import scaling_groups
from tui_lab.run.events import SessionSaved
from tui_lab.run.executor import InlineExecutor
from tui_lab.run.policy import plan_tasks
from tui_lab.run.process_pool import LocalProcesses
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import CheckedModel, UserData, UserModel

EXAMPLES = Path(__file__).parent.parent / "examples"

NETS = """
from torch import nn


def build(input_shape, num_classes, width=8):
    channels, height, side = input_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(channels * height * side, width), nn.ReLU(),
        nn.Linear(width, num_classes),
    )
"""


def write_blobs(path: Path, n: int = 120, classes: int = 3) -> Path:
    """Separable 1×6×6 blobs, one per class: a tensor file as a user would save it."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 1, 6, 6)).astype(np.float32) + y[:, None, None, None]
    np.savez(path, x=x, y=y)
    return path


def user_preset(folder: Path, model: object, **changes: object) -> Path:
    """A preset in ``folder`` naming ``model`` and blobs.npz beside it (relative paths)."""
    write_blobs(folder / "blobs.npz")
    preset = {
        "name": "own",
        "model": model,
        "dataset": {"path": "blobs.npz"},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "batch_sizes": [8, 32],
        "epochs": 2,
        "target_accuracy": 0.5,
        "parallel": 1,
        **changes,
    }
    path = folder / "preset.json"
    path.write_text(json.dumps(preset))
    return path


def finals(events) -> list:
    return [e.session for e in events if isinstance(e, SessionSaved) and e.final]


def test_a_preset_naming_a_model_file_and_a_tensor_file_runs_headless_and_compare_reads_it(
    tmp_path, capsys
):
    (tmp_path / "nets.py").write_text(NETS)
    preset = user_preset(tmp_path, {"file": "nets.py", "factory": "build", "kwargs": {"width": 5}})
    out = tmp_path / "out"
    assert main(["--headless", str(preset), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    parameters = 36 * 5 + 5 + 5 * 3 + 3
    assert "model nets.py:build(width=5)@" in printed and f"{parameters} trainable" in printed
    sessions = [load_session(p) for p in sorted(out.glob("*.json"))]
    assert [s.status for s in sessions] == ["completed", "completed"]
    model = sessions[0].config.model
    assert isinstance(model, CheckedModel)
    assert model.file == tmp_path / "nets.py" and model.kwargs == {"width": 5}
    assert model.sha256 == hashlib.sha256((tmp_path / "nets.py").read_bytes()).hexdigest()
    assert model.parameters == parameters and model.stacking_blocker is None
    assert sessions[0].config.dataset == UserData(path=tmp_path / "blobs.npz")
    assert main(["compare", str(out)]) == 0
    assert "blobs.npz/nets.py:build(width=5)@" in capsys.readouterr().out


def test_the_example_preset_runs_as_committed(tmp_path):
    preset = load_preset(EXAMPLES / "own-model.json")
    assert isinstance(preset.model, UserModel) and preset.model.file == EXAMPLES / "nets.py"
    prepared = prepare_sweep(preset.updated(epochs=1, batch_sizes=[64]), out_dir=tmp_path)
    [session] = finals(run_sweep(prepared))
    assert session.status == "completed" and session.config.dataset == preset.dataset
    assert prepared.data.num_classes == 10 and prepared.data.input_shape == (1, 8, 8)


def module_on_path(folder: Path, monkeypatch, name: str, text: str) -> str:
    """A package ``name`` with a module ``nets`` on the Python path; its dotted name."""
    (folder / name).mkdir()
    (folder / name / "__init__.py").write_text("")
    (folder / name / "nets.py").write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    return f"{name}.nets"


def test_a_module_on_the_python_path_is_the_short_form(tmp_path, monkeypatch):
    module = module_on_path(tmp_path, monkeypatch, "bslab_test_short_form", NETS)
    preset = load_preset(user_preset(tmp_path, f"{module}:build", batch_sizes=[32]))
    [session] = finals(run_sweep(prepare_sweep(preset, out_dir=tmp_path / "out")))
    assert session.status == "completed"
    assert session.config.model.module == module and session.config.model.sha256 is not None


BAD_FACTORIES = {
    "raises": (
        "def build(shape, classes):\n    raise ValueError('no such width')\n",
        "model.factory",
        "raised ValueError: no such width (nets.py line 2)",
    ),
    "not-a-module": (
        "def build(shape, classes):\n    return 42\n",
        "model.factory",
        "returned int, not a torch.nn.Module",
    ),
    "wrong-classes": (
        "from torch import nn\ndef build(shape, classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(36, 7))\n",
        "model",
        "returns (8, 7) for a batch of 8, expected (8, 3)",
    ),
    "wrong-input": (
        "from torch import nn\ndef build(shape, classes):\n    return nn.Linear(10, classes)\n",
        "model",
        "fails on a batch of shape (8, 1, 6, 6): RuntimeError",
    ),
    "syntax-error": ("def build(shape, classes)\n    pass\n", "model.file", "SyntaxError"),
    "import-error": (
        "import no_such_package_for_bslab\n",
        "model.file",
        "ModuleNotFoundError: No module named 'no_such_package_for_bslab'",
    ),
    "no-factory": (
        "def other(shape, classes):\n    pass\n",
        "model.factory",
        "'build' is not defined there (nets.py)",
    ),
    "no-parameters": (
        "from torch import nn\nclass Fixed(nn.Module):\n"
        "    def forward(self, x):\n        return x.flatten(1)[:, :3]\n"
        "def build(shape, classes):\n    return Fixed()\n",
        "model",
        "has no trainable parameters",
    ),
}


@pytest.mark.parametrize("case", BAD_FACTORIES, ids=list(BAD_FACTORIES))
def test_a_bad_factory_ends_in_exit_2_naming_the_file_and_field(tmp_path, capsys, case):
    text, field, message = BAD_FACTORIES[case]
    (tmp_path / "nets.py").write_text(text)
    preset = user_preset(tmp_path, {"file": "nets.py", "factory": "build"})
    assert main(["--headless", str(preset), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bslab: error: {preset}: {field}: ") and message in err
    assert "Traceback" not in err and not list((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize(
    ("model", "field", "message"),
    [
        ({"file": "missing.py", "factory": "build"}, "model.file", "missing.py: file not found"),
        ("bslab_no_such_module_xyz:build", "model.module", "cannot import bslab_no_such_module"),
        ({"file": "nets.py", "module": "m", "factory": "b"}, "model", "either 'module' or 'file'"),
        ("lenett5", "model", "(got 'lenett5'), or your own: \"package.module:factory\" or"),
    ],
)
def test_a_model_that_cannot_be_found_is_bad_input(tmp_path, capsys, model, field, message):
    preset = user_preset(tmp_path, model)
    assert main(["--headless", str(preset), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{preset}: {field}: " in err and message in err and "Traceback" not in err


def test_a_built_in_model_that_does_not_fit_the_data_is_bad_input(tmp_path, capsys):
    preset = user_preset(tmp_path, "lenet5")  # 6×6 images: too small for LeNet-5's 5×5 convs
    assert main(["--headless", str(preset), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{preset}: model: lenet5 does not fit blobs.npz" in err and "Traceback" not in err


def test_a_file_edited_after_the_check_is_not_rebuilt_silently(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    preset = load_preset(user_preset(tmp_path, {"file": "nets.py", "factory": "build"}))
    prepared = prepare_sweep(preset, out_dir=tmp_path / "out")
    checked = prepared.runs[0].model
    (tmp_path / "nets.py").write_text(NETS + "\n# edited\n")
    with pytest.raises(BadInput, match=r"nets\.py changed since the sweep checked it"):
        build_user_model(checked, (1, 6, 6), 3)


TRAP = """
from pathlib import Path
Path({marker!r}).write_text("imported")
from torch import nn
def build(shape, classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(36, classes))
"""


def test_reading_a_session_that_names_a_module_never_imports_it(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "imported.txt"
    name = "bslab_test_trap_module"
    module = module_on_path(tmp_path, monkeypatch, name, TRAP.format(marker=str(marker)))
    preset = load_preset(user_preset(tmp_path, f"{module}:build", batch_sizes=[8, 32]))
    out = tmp_path / "out"
    finals(run_sweep(prepare_sweep(preset, out_dir=out)))
    assert marker.exists()  # the sweep ran it, as a preset naming code does
    marker.unlink()
    for loaded in [m for m in sys.modules if m.startswith(name)]:
        monkeypatch.delitem(sys.modules, loaded)
    assert main(["compare", str(out)]) == 0
    assert main(["compare", "--format", "json", str(out)]) == 0
    assert f"{module}:build@" in capsys.readouterr().out
    loaded, _ = load_sessions([out])
    with pytest.raises(BadInput, match="never runs code that only a session file names"):
        compute(*loaded, points=5, train_samples=16, device="cpu", data_dir=None)
    assert not marker.exists() and not any(m.startswith(name) for m in sys.modules)


def test_compare_keeps_two_versions_of_a_model_apart(tmp_path, capsys):
    (tmp_path / "nets.py").write_text(NETS)
    preset = load_preset(user_preset(tmp_path, {"file": "nets.py", "factory": "build"}))
    out = tmp_path / "out"
    sessions = finals(run_sweep(prepare_sweep(preset, out_dir=out)))
    (tmp_path / "nets.py").write_text(NETS.replace("width=8", "width=9"))
    edited = load_preset(tmp_path / "preset.json")
    sessions += finals(run_sweep(prepare_sweep(edited, out_dir=out)))
    hashes = {s.config.model.sha256 for s in sessions}
    assert len(hashes) == 2
    groups = scaling_groups(sessions)
    assert len(groups) == 2  # one verdict per version of the code, never one for both
    assert main(["compare", str(out)]) == 0
    table = capsys.readouterr().out
    assert all(f"nets.py:build@{h[:8]}" in table for h in hashes)


def test_a_user_model_stacks_where_torch_func_can_and_says_why_not_where_it_cannot(tmp_path):
    shutil.copy(EXAMPLES / "nets.py", tmp_path / "nets.py")
    stacked = load_preset(
        user_preset(
            tmp_path,
            {"file": "nets.py", "factory": "tiny_cnn", "kwargs": {"width": 4}},
            replicates=2,
            stacking="stacked",
            batch_sizes=[8],
            epochs=1,
            trajectory={"grid_resolution": 5, "eval_samples": 16},
            noise_scale={"probe_size": 64, "time_share": 1},
        )
    )
    prepared = prepare_sweep(stacked, out_dir=tmp_path / "stacked")
    assert plan_tasks(prepared.runs) == [[0, 1]]
    sessions = finals(run_sweep(prepared))
    assert [(s.status, s.stacked) for s in sessions] == [("completed", 2)] * 2
    assert all(s.noise_scale and s.trajectory is not None for s in sessions)  # instruments too
    norm = stacked.updated(model={"file": str(tmp_path / "nets.py"), "factory": "batch_norm_cnn"})
    prepared = prepare_sweep(norm, out_dir=tmp_path / "norm")
    assert prepared.runs[0].model.stacking_blocker == (
        "it has batch norm (BatchNorm2d), whose running statistics vmap cannot update"
    )
    assert plan_tasks(prepared.runs) == [[0], [1]]


def test_worker_processes_rebuild_the_model_from_its_spec(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    preset = load_preset(user_preset(tmp_path, {"file": "nets.py", "factory": "build"}))
    prepared = prepare_sweep(preset.updated(threads=1), out_dir=tmp_path / "one")
    here = finals(run_sweep(prepared, executor=InlineExecutor()))
    prepared = prepare_sweep(preset.updated(threads=1), out_dir=tmp_path / "pool")
    there = finals(run_sweep(prepared, executor=LocalProcesses(parallel=2)))
    assert [s.status for s in there] == ["completed", "completed"]
    losses = sorted(s.epochs[-1].train_loss for s in here)
    assert sorted(s.epochs[-1].train_loss for s in there) == pytest.approx(losses)


def test_a_model_with_dropout_cannot_be_stacked_and_the_reason_says_so():
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    x, y = torch.randn(8, 1, 6, 6), torch.arange(8) % 3
    assert stacking_blocker_of(model, x, y).startswith(
        "torch.func cannot stack it (RuntimeError: vmap: called random operation"
    )
    assert stacking_blocker_of(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)), x, y) is None
