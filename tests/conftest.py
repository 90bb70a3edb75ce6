"""Shared test set-up: offline, single-threaded torch (2-core CI), tiny presets on local data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ["BSLAB_OFFLINE"] = "1"  # nothing may download data during tests
torch.set_num_threads(1)  # torch's thread pool thrashes when pytest shares 2 cores

from factories import OLD_RUN, SWEEP, small_sweep  # noqa: E402

from tui_lab.core.storage import save_model  # noqa: E402
from tui_lab.schema import TrainPreset  # noqa: E402

SNAPSHOTS_TEXT = Path(__file__).parent / "snapshots_text"


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch) -> None:
    """Text boxes' cursors stay lit: a blink every half second would make what a snapshot or a
    test sees depend on when it looked, so on how busy the machine was."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def tiny_preset() -> TrainPreset:
    return small_sweep(target_accuracy=0.3, seed=0)


@pytest.fixture(scope="session")
def trained_pair_dir(tmp_path_factory) -> Path:
    """A batch-16 and a full-batch run of one small model on the same data, weights beside them.

    Trained once per test session: sketches, interpolation and compare tests all read them.
    """
    from tui_lab.run.sweep import prepare_sweep, run_sweep

    preset = small_sweep(name="pair", batch_sizes=[16, "full"])
    out = tmp_path_factory.mktemp("pair")
    for _ in run_sweep(prepare_sweep(preset, out_dir=out)):
        pass
    return out


@pytest.fixture
def assert_text_snapshot():
    """Compare text with a golden file; BSLAB_UPDATE_SNAPSHOTS=1 rewrites it after a change."""

    def check(name: str, text: str) -> None:
        path = SNAPSHOTS_TEXT / name
        if os.environ.get("BSLAB_UPDATE_SNAPSHOTS") == "1":
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if not path.exists():
            pytest.fail(f"{path} missing: run with BSLAB_UPDATE_SNAPSHOTS=1 to create it")
        assert text == path.read_text(encoding="utf-8")

    return check


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    folder.mkdir()
    for session in [*SWEEP, OLD_RUN]:
        save_model(session, folder / f"{session.id}.json")
    return folder
