"""The second reference experiment's model: a small ResNet-9 for CIFAR-10-shaped images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tui_lab.cli.main import main
from tui_lab.core.models import build_model
from tui_lab.core.storage import load_preset, load_session
from tui_lab.run.stacked import stacking_blocker
from tui_lab.run.sweep import plan_runs

PRESETS = Path(__file__).parent.parent / "presets"


def test_resnet9_maps_cifar_images_to_class_scores_with_a_residual_path():
    model = build_model("resnet9", (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 1_646_112
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_the_cifar_preset_is_valid_and_its_runs_are_never_stacked():
    preset = load_preset(PRESETS / "resnet-cifar10.json")
    assert preset.model == "resnet9" and preset.dataset == "cifar10"
    runs = plan_runs(preset.updated(replicates=2), 50_000, "cuda:0")
    assert stacking_blocker(runs[:2]) == (
        "resnet9 has batch norm, whose running statistics vmap cannot update"
    )


def test_the_cifar_preset_without_cifar_says_where_to_put_it(tmp_path, capsys):
    preset = PRESETS / "resnet-cifar10.json"
    code = main(["--headless", str(preset), "--data-dir", str(tmp_path), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and f"{preset}: dataset: cifar10 is not available" in err
    assert f"Put cifar-10-batches-py in {tmp_path}" in err and "Traceback" not in err


def test_resnet9_trains_on_cifar_shaped_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "c.npz", x=x, y=np.arange(40) % 10)
    preset = tmp_path / "p.json"
    preset.write_text(
        '{"model": "resnet9", "dataset": {"path": "c.npz"}, "batch_sizes": [16], "epochs": 1,'
        ' "noise_scale": {"enabled": false}, "trajectory": {"enabled": false}, "device": "cpu"}'
    )
    assert main(["--headless", str(preset), "--out", str(tmp_path / "out")]) == 0
    [session] = [load_session(p) for p in (tmp_path / "out").glob("*.json")]
    assert session.status == "completed" and session.config.model == "resnet9"
