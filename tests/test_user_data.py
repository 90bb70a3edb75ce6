"""The user's own data: an image folder or a tensor file, checked, split by the preset's seed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tui_lab.core.data import load_data
from tui_lab.errors import BadInput
from tui_lab.run.sweep import prepare_sweep
from tui_lab.schema import TrainPreset, UserData


def blobs(n: int = 40, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 5, 5)).astype(np.float32), np.arange(n) % classes


def image_folder(root: Path, sizes: dict[str, int], mode: str = "L", side: int = 6) -> Path:
    """``root/<class>/<i>.png``: image i of each class is filled with the value 10·i."""
    for name, count in sizes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new(mode, (side, side), 10 * i if mode == "L" else (10 * i, 0, 0)).save(
                root / name / f"{i}.png"
            )
    return root


def test_a_tensor_file_gives_its_shape_and_class_count_and_a_split_fixed_by_the_seed(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = UserData(path=tmp_path / "d.npz", validation_fraction=0.25)
    data = load_data(spec, seed=7)
    assert data.input_shape == (1, 5, 5) and data.num_classes == 4  # N×H×W gains a channel
    assert (data.n_train, len(data.val_y)) == (30, 10) and data.name == "d.npz"
    again, other = load_data(spec, seed=7, train_subset=None), load_data(spec, seed=8)
    assert torch.equal(again.val_y, data.val_y) and torch.equal(again.val_x, data.val_x)
    assert not torch.equal(other.val_x, data.val_x)
    every = torch.cat([data.train_x, data.val_x]).squeeze(1).numpy()
    assert sorted(map(bytes, every)) == sorted(map(bytes, x))  # each sample once, as given


class Anything:
    """Not a tensor: a .pt holding it would run code when unpickled without weights_only."""


def test_a_pt_file_holding_objects_is_refused_unread(tmp_path):
    torch.save({"x": torch.zeros(4, 3), "y": Anything()}, tmp_path / "d.pt")
    with pytest.raises(BadInput, match="holds objects other than tensors"):
        load_data(UserData(path=tmp_path / "d.pt"), seed=0)


def test_a_pt_file_of_x_and_y_reads_like_an_npz(tmp_path):
    x, y = blobs(classes=2)
    torch.save(
        {"x": torch.from_numpy(x).reshape(40, 25), "y": torch.from_numpy(y)}, tmp_path / "d.pt"
    )
    data = load_data(UserData(path=tmp_path / "d.pt"), seed=0)
    assert data.input_shape == (25,) and data.num_classes == 2 and data.n_train == 32


def test_an_image_folder_is_read_in_imagefolder_order_and_standardised(tmp_path):
    root = image_folder(tmp_path / "imgs", {"cat": 5, "ant": 5, "bee": 5})
    data = load_data(UserData(path=root), seed=0)
    assert data.input_shape == (1, 6, 6) and data.num_classes == 3
    assert data.n_train + len(data.val_y) == 15 and len(data.val_y) == 3
    assert abs(float(data.train_x.mean())) < 1e-5 and float(data.train_x.std()) == pytest.approx(
        1, rel=0.05
    )
    colour = load_data(
        UserData(path=image_folder(tmp_path / "rgb", {"a": 2, "b": 2}, "RGB")), seed=0
    )
    assert colour.input_shape == (3, 6, 6)


def test_a_sweep_on_the_users_data_names_it_and_splits_it_by_the_preset_seed(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    preset = TrainPreset(
        dataset=UserData(path=tmp_path / "d.npz"),
        model="mlp",
        seed=5,
        replicates=2,
        batch_sizes=[8],
    )
    prepared = prepare_sweep(preset, out_dir=tmp_path / "out")
    assert [r.seed for r in prepared.runs] == [5, 6]  # two seeds of the run, one split
    assert torch.equal(prepared.data.val_x, load_data(preset.dataset, seed=5).val_x)
    assert all(r.dataset == preset.dataset for r in prepared.runs)


def bad_tensor_file(folder: Path, case: str) -> Path:
    x, y = blobs()
    path = folder / "d.npz"
    if case == "lengths":
        np.savez(path, x=x, y=y[:-1])
    elif case == "negative-label":
        np.savez(path, x=x, y=np.where(y == 3, -1, y))
    elif case == "empty-class":
        np.savez(path, x=x, y=np.where(y == 1, 3, y))
    elif case == "float-labels":
        np.savez(path, x=x, y=y.astype(np.float32))
    elif case == "no-y":
        np.savez(path, x=x)
    elif case == "not-an-npz":
        path.write_text("hello")
    elif case == "nan":
        x[0, 0, 0] = np.nan
        np.savez(path, x=x, y=y)
    elif case == "pickled-objects":
        np.savez(path, x=np.array([object()] * 40, dtype=object), y=y)
    elif case == "one-sample":
        np.savez(path, x=x[:1], y=y[:1])
    elif case == "fifo":
        os.mkfifo(path)
    return path


BAD_TENSORS = {
    "lengths": "x has 40 samples but y has 39 labels",
    "negative-label": "label -1 out of range",
    "empty-class": "class 1 has no samples",
    "float-labels": "y must be a 1-D array of integer labels",
    "no-y": "no array 'y' (expected x and y)",
    "not-an-npz": "cannot read",
    "nan": "x holds NaN or infinite values",
    "pickled-objects": "cannot read",
    "one-sample": "1 samples: too few to split",
    "fifo": "not a regular file",
}


@pytest.mark.parametrize("case", BAD_TENSORS, ids=list(BAD_TENSORS))
def test_bad_tensor_files_are_bad_input_naming_the_file(tmp_path, case):
    path = bad_tensor_file(tmp_path, case)
    with pytest.raises(BadInput) as caught:
        load_data(UserData(path=path), seed=0, source="p.json")
    assert caught.value.source == "p.json" and caught.value.field == "dataset.path"
    assert (
        caught.value.message.startswith(f"{path}: ") and BAD_TENSORS[case] in caught.value.message
    )


def test_bad_image_folders_are_bad_input_naming_the_file(tmp_path):
    root = image_folder(tmp_path / "a", {"cat": 2, "dog": 2})
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(BadInput, match=r"broken\.png: cannot read the image"):
        load_data(UserData(path=root), seed=0)
    root = image_folder(tmp_path / "b", {"cat": 2, "dog": 0})
    with pytest.raises(BadInput, match=r"b/dog: class 'dog' has no images"):
        load_data(UserData(path=root), seed=0)
    root = image_folder(tmp_path / "c", {"cat": 2, "dog": 2})
    Image.new("L", (7, 6)).save(root / "dog" / "wide.png")
    with pytest.raises(BadInput, match=r"wide\.png: is 7×6 pixels, 0\.png is 6×6"):
        load_data(UserData(path=root), seed=0)
    with pytest.raises(BadInput, match="not found"):
        load_data(UserData(path=tmp_path / "nowhere"), seed=0)


def test_a_preset_names_the_data_relative_to_itself_and_refuses_other_suffixes(tmp_path):
    from tui_lab.core.storage import load_preset

    (tmp_path / "p.json").write_text('{"dataset": {"path": "data/d.npz"}}')
    assert load_preset(tmp_path / "p.json").dataset.path == tmp_path / "data" / "d.npz"
    (tmp_path / "q.json").write_text('{"dataset": {"path": "d.csv"}}')
    with pytest.raises(BadInput, match=r"q\.json: dataset: 'path' must be an image folder"):
        load_preset(tmp_path / "q.json")
    (tmp_path / "r.json").write_text('{"dataset": "d.npz"}')
    with pytest.raises(
        BadInput, match=r"\(got 'd\.npz'\), or your own: \{\"path\": \"data\.npz\"\}"
    ):
        load_preset(tmp_path / "r.json")
