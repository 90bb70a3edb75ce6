"""Data sets as whole tensors: the training loop cuts batches by indexing, never per sample.

``digits`` (scikit-learn's UCI handwritten digits, upscaled to MNIST's 28×28) needs nothing but
the installed packages. The MNIST family is read from IDX files in a local folder (torchvision's
layout, a plain folder, or Debian's ``dataset-fashion-mnist``), or downloaded through torchvision
when online. CIFAR-10 is read through torchvision from ``cifar-10-batches-py``.
"""

from __future__ import annotations

import functools
import gzip
import subprocess
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tui_lab.errors import BadInput
from tui_lab.schema import DatasetName, UserData
from tui_lab.settings import data_cache_dir, downloads_allowed

DIGITS_VALIDATION_FRACTION = 0.2
NUM_CLASSES = 10  # in every data set offered
DIGITS_SAMPLES = 1797  # the UCI digits scikit-learn ships
# Training samples of each built-in data set, known without loading it (Setup counts with it).
TRAIN_SIZES: dict[str, int] = {
    "digits": DIGITS_SAMPLES - round(DIGITS_SAMPLES * DIGITS_VALIDATION_FRACTION),
    "mnist": 60_000,
    "fashion-mnist": 60_000,
    "kmnist": 60_000,
    "cifar10": 50_000,
}

# torchvision's folder name for each IDX data set, and its normalisation constants.
IDX_DATASETS = {
    "mnist": ("MNIST", (0.1307, 0.3081)),
    "fashion-mnist": ("FashionMNIST", (0.2860, 0.3530)),
    "kmnist": ("KMNIST", (0.1918, 0.3483)),
}
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "val_x": "t10k-images-idx3-ubyte",
    "val_y": "t10k-labels-idx1-ubyte",
}
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class DataSpec:
    """How a data set was loaded, so that another process loads the very same split (the
    preset's seed decides it, never a run's)."""

    name: DatasetName
    data_dir: Path | None
    seed: int
    train_subset: int | None

    def load(self) -> Data:
        return load_data(
            self.name, data_dir=self.data_dir, seed=self.seed, train_subset=self.train_subset
        )


@dataclass(frozen=True)
class Data:
    """A classification data set held as tensors (images N×C×H×W float32, labels N int64)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    spec: DataSpec | None = None  # set by load_data: how to load it again elsewhere

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def to(self, device: str | torch.device) -> Data:
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            val_x=self.val_x.to(device),
            val_y=self.val_y.to(device),
        )

    def train_sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed sample of at most n training examples (the same for every run of a data set),
        on the data's device: what loss grids and interpolations are evaluated on."""
        n = min(n, self.n_train)
        keep = torch.randperm(self.n_train, generator=torch.Generator().manual_seed(0))[:n]
        keep = keep.to(self.train_x.device)
        return self.train_x[keep], self.train_y[keep]

    def subset(self, n_train: int, seed: int) -> Data:
        """The first ``n_train`` samples of a seeded permutation of the training set."""
        if n_train >= self.n_train:
            return self
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(self.n_train, generator=generator)[:n_train]
        return replace(self, train_x=self.train_x[keep], train_y=self.train_y[keep])


def load_data(
    name: DatasetName | UserData,
    *,
    data_dir: Path | None = None,
    seed: int = 0,
    train_subset: int | None = None,
    source: str | None = None,
) -> Data:
    """The named data set (or the user's) on the CPU (cached per process, so a sweep loads it
    once; the user's is read again once its file changes)."""
    if isinstance(name, UserData):
        from tui_lab.core.user_data import version

        data = _load_cached(name, None, seed, source, version(name))
    else:
        data_dir = None if data_dir is None else Path(data_dir).expanduser()
        data = _load_cached(name, data_dir, seed, source)
    data = data.subset(train_subset, seed) if train_subset else data
    return replace(data, spec=DataSpec(name, data_dir, seed, train_subset))


def train_size(name: DatasetName | UserData, train_subset: int | None = None) -> int | None:
    """The training samples a sweep of this data set will have, without loading it; None for
    the user's data (known only once read)."""
    if isinstance(name, UserData):
        return None
    size = TRAIN_SIZES[name]
    return min(size, train_subset) if train_subset else size


@functools.lru_cache(maxsize=4)
def _load_cached(
    name: str | UserData,
    data_dir: Path | None,
    seed: int,
    source: str | None,
    version: tuple[int, int] | None = None,
) -> Data:
    if isinstance(name, UserData):
        from tui_lab.core.user_data import load_user_data  # it builds on this module's Data

        return load_user_data(name, seed, source)
    if name == "digits":
        return load_digits(seed)
    if name in IDX_DATASETS:
        return load_idx_dataset(name, data_dir, source)
    if name == "cifar10":
        return load_cifar10(data_dir, source)
    raise BadInput(f"unknown dataset {name!r}", source=source, field="dataset")


def load_digits(seed: int) -> Data:
    """UCI digits (8×8, 0..16) scaled into MNIST's 20×20 box inside 28×28; split by seed."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.pad(F.interpolate(images, size=(20, 20), mode="bilinear"), (4, 4, 4, 4))
    images = (images - images.mean()) / images.std()
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_val = round(len(labels) * DIGITS_VALIDATION_FRACTION)
    val, train = order[:n_val], order[n_val:]
    return Data("digits", images[train], labels[train], images[val], labels[val], NUM_CLASSES)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise BadInput(f"cannot read: {error}", source=path) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise BadInput("not an IDX file of unsigned bytes", source=path)
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise BadInput(f"IDX file is truncated (expected shape {shape})", source=path)
    return body.reshape(shape)


def check_idx_arrays(arrays: dict[str, np.ndarray], files: dict[str, Path]) -> None:
    """28×28 images, one label per image, labels 0-9: else the first wrong file is BadInput."""
    for split in ("train", "val"):
        images, labels = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) == 0:
            raise BadInput(
                f"expected N×28×28 images, found shape {images.shape}", source=files[f"{split}_x"]
            )
        if labels.shape != (len(images),):
            raise BadInput(
                f"expected {len(images)} labels (one per image), found shape {labels.shape}",
                source=files[f"{split}_y"],
            )
        if labels.max() >= NUM_CLASSES:
            raise BadInput(
                f"label {labels.max()} out of range (0 to {NUM_CLASSES - 1})",
                source=files[f"{split}_y"],
            )


def debian_fashion_mnist_dir() -> Path | None:
    """Where Debian's ``dataset-fashion-mnist`` package put its files, if it is installed."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        if line.endswith(IDX_FILES["train_x"] + ".gz") or line.endswith(IDX_FILES["train_x"]):
            return Path(line).parent
    return None


def idx_search_dirs(name: str, data_dir: Path | None) -> list[Path]:
    folder = IDX_DATASETS[name][0]
    roots = [data_dir] if data_dir is not None else []
    roots.append(data_cache_dir())
    dirs = [d for root in roots for d in (root / folder / "raw", root / folder, root)]
    if name == "fashion-mnist" and (debian := debian_fashion_mnist_dir()) is not None:
        dirs.append(debian)
    return dirs


def find_idx_files(name: str, data_dir: Path | None) -> dict[str, Path] | None:
    for directory in idx_search_dirs(name, data_dir):
        found = {}
        for key, stem in IDX_FILES.items():
            candidates = [directory / stem, directory / (stem + ".gz")]
            found[key] = next((c for c in candidates if c.is_file()), None)
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def download_idx(name: str) -> None:
    """Fetch the data set into the cache folder with torchvision (prints its own progress)."""
    import torchvision.datasets as tv

    cls = {"mnist": tv.MNIST, "fashion-mnist": tv.FashionMNIST, "kmnist": tv.KMNIST}[name]
    for train in (True, False):
        cls(str(data_cache_dir()), train=train, download=True)


def load_idx_dataset(name: str, data_dir: Path | None, source: str | None) -> Data:
    files = find_idx_files(name, data_dir)
    if files is None and downloads_allowed():
        try:
            download_idx(name)
        except Exception:
            files = None
        else:
            files = find_idx_files(name, data_dir)
    if files is None:
        folder = IDX_DATASETS[name][0]
        where = data_dir or data_cache_dir()
        raise BadInput(
            f"{name} is not available offline. Put the four IDX files "
            f"({', '.join(IDX_FILES.values())}, optionally .gz) in {where}/{folder}/raw "
            f"or pass --data-dir DIR",
            source=source,
            field="dataset",
        )
    mean, std = IDX_DATASETS[name][1]
    try:
        arrays = {key: read_idx(path) for key, path in files.items()}
        check_idx_arrays(arrays, files)
    except BadInput as error:  # name the preset's field too: that is what the user changes
        raise BadInput(
            f"{error.source}: {error.message}",
            source=source,
            field="data_dir" if data_dir is not None else "dataset",
        ) from None

    def images(a: np.ndarray) -> torch.Tensor:
        return ((torch.from_numpy(a.copy()).float() / 255.0 - mean) / std).unsqueeze(1)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return Data(
        name,
        images(arrays["train_x"]),
        labels(arrays["train_y"]),
        images(arrays["val_x"]),
        labels(arrays["val_y"]),
        NUM_CLASSES,
    )


def load_cifar10(data_dir: Path | None, source: str | None) -> Data:
    import torchvision.datasets as tv

    root = data_dir or data_cache_dir()
    try:
        sets = [tv.CIFAR10(str(root), train=t, download=downloads_allowed()) for t in (True, False)]
    except Exception as error:
        raise BadInput(
            f"cifar10 is not available ({error}). Put cifar-10-batches-py in {root} "
            f"or pass --data-dir DIR",
            source=source,
            field="dataset",
        ) from None
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)

    def images(a: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    train, val = sets
    return Data(
        "cifar10",
        images(train.data),
        torch.tensor(train.targets),
        images(val.data),
        torch.tensor(val.targets),
        NUM_CLASSES,
    )
