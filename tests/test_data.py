"""Data: the offline digits, local IDX folders in torchvision's layout, and clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from tui_lab.core.data import IDX_FILES, load_data, read_idx
from tui_lab.errors import BadInput


def test_digits_come_in_mnist_shape_with_a_seeded_split():
    data = load_data("digits", seed=0)
    assert data.input_shape == (1, 28, 28)
    assert data.n_train + len(data.val_y) == 1797
    assert len(data.val_y) == 359
    assert set(data.train_y.unique().tolist()) == set(range(10))
    again = load_data("digits", seed=0)
    assert torch.equal(again.val_y, data.val_y)
    assert not torch.equal(load_data("digits", seed=1).val_y, data.val_y)


def test_train_subset_is_fixed_by_the_seed():
    a = load_data("digits", seed=3, train_subset=100)
    b = load_data("digits", seed=3, train_subset=100)
    assert a.n_train == 100 and torch.equal(a.train_y, b.train_y)


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def fake_mnist(folder, n_train=50, n_val=20, compress=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28)),
        "train_y": rng.integers(0, 10, n_train),
        "val_x": rng.integers(0, 256, (n_val, 28, 28)),
        "val_y": rng.integers(0, 10, n_val),
    }
    for key, stem in IDX_FILES.items():
        write_idx(folder / stem, arrays[key], compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_local_mnist_in_torchvision_layout(tmp_path, compress):
    arrays = fake_mnist(tmp_path / "MNIST" / "raw", compress=compress)
    data = load_data("mnist", data_dir=tmp_path)
    assert data.input_shape == (1, 28, 28) and data.n_train == 50 and len(data.val_y) == 20
    assert data.train_y.tolist() == arrays["train_y"].tolist()


def test_fashion_mnist_from_a_plain_folder(tmp_path):
    fake_mnist(tmp_path, compress=True)
    assert load_data("fashion-mnist", data_dir=tmp_path).n_train == 50


def test_missing_data_offline_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BSLAB_DATA", str(tmp_path / "cache"))
    with pytest.raises(BadInput) as info:
        load_data("kmnist", data_dir=tmp_path / "empty", source="p.json")
    message = info.value.describe()
    assert "p.json: dataset" in message and "KMNIST/raw" in message and "--data-dir" in message


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(BadInput, match="truncated"):
        read_idx(path)


def corrupt_gzip(folder) -> None:
    (folder / (IDX_FILES["train_x"] + ".gz")).write_bytes(b"\x1f\x8b\x08\x00garbage")


def images_of_the_wrong_shape(folder) -> None:
    write_idx(folder / IDX_FILES["val_x"], np.zeros((20, 28 * 28)), compress=False)


def labels_out_of_range(folder) -> None:
    write_idx(folder / IDX_FILES["train_y"], np.full(50, 10), compress=False)


def one_label_missing(folder) -> None:
    write_idx(folder / IDX_FILES["val_y"], np.zeros(19), compress=False)


@pytest.mark.parametrize(
    ("damage", "file", "expected"),
    [
        (corrupt_gzip, "train_x", "cannot read"),
        (images_of_the_wrong_shape, "val_x", "expected N×28×28 images"),
        (labels_out_of_range, "train_y", "label 10 out of range"),
        (one_label_missing, "val_y", "expected 20 labels"),
    ],
)
def test_damaged_idx_files_are_bad_input_naming_preset_field_and_file(
    tmp_path, damage, file, expected
):
    fake_mnist(tmp_path, compress=damage is corrupt_gzip)
    damage(tmp_path)
    with pytest.raises(BadInput) as info:
        load_data("mnist", data_dir=tmp_path, source="p.json")
    message = info.value.describe()
    assert message.startswith("p.json: data_dir: ") and IDX_FILES[file] in message
    assert expected in message
