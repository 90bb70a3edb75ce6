"""The user's own data set: an image folder or a tensor file, checked and split by seed.

An image folder has one sub-folder per class (torchvision's ImageFolder layout); its images
must share one size, and are scaled to 0..1 then standardised per channel with the training
split's mean and standard deviation, as the built-in sets are. A tensor file (.npz, or a .pt
saved with ``torch.save({"x": x, "y": y})``) holds inputs ``x`` (N×features, N×H×W or
N×C×H×W, used as given) and integer labels ``y`` (0..K-1, every class present). The seed
fixes the train/validation split, so every run of a sweep sees the same one.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from tui_lab.core.data import Data
from tui_lab.core.user_files import read_bytes, regular_file
from tui_lab.errors import BadInput
from tui_lab.schema import UserData

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
FIELD = "dataset.path"


def version(spec: UserData) -> tuple[int, int]:
    """When and how big the file (or folder) was last changed: a cache of it is stale after."""
    try:
        info = os.stat(spec.path)
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


def load_user_data(spec: UserData, seed: int, source: str | None = None) -> Data:
    """The data set the spec names, split into training and validation by ``seed``."""
    if spec.is_tensor_file:
        x, y, num_classes = read_tensor_file(spec.path, source)
    else:
        x, y, num_classes = read_image_folder(spec.path, source)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(y) * spec.validation_fraction))
    if n_val >= len(y):
        raise BadInput(
            f"{spec.path}: {len(y)} samples leave none for training after holding out "
            f"{spec.validation_fraction:g} for validation",
            source=source,
            field=FIELD,
        )
    val, train = order[:n_val], order[n_val:]
    train_x, val_x = x[train], x[val]
    if not spec.is_tensor_file:  # standardise with the training split's statistics only
        dims = [0, 2, 3]
        mean, std = train_x.mean(dims, keepdim=True), train_x.std(dims, keepdim=True)
        std = torch.where(std > 0, std, torch.ones_like(std))
        train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    return Data(str(spec), train_x, y[train], val_x, y[val], num_classes)


def _bad(path: Path, problem: str, source: str | None) -> BadInput:
    return BadInput(f"{path}: {problem}", source=source, field=FIELD)


def read_tensor_file(path: Path, source: str | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``x`` as float32 (N×H×W gains a channel) and ``y`` as int64, checked; the class count."""
    raw, _ = read_bytes(path, source=source, field=FIELD)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in ("x", "y") if key in npz.files}
        else:
            loaded = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            arrays = loaded if isinstance(loaded, dict) else {}
    except pickle.UnpicklingError:
        raise _bad(
            path,
            "holds objects other than tensors, which bslab does not unpickle: save a dict of "
            'two tensors, torch.save({"x": x, "y": y}, path)',
            source,
        ) from None
    except Exception as error:  # numpy, zipfile and torch's safe unpickler each raise their own
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise _bad(path, f"cannot read: {type(error).__name__}: {first_line}", source) from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise _bad(path, f"no array {' or '.join(map(repr, missing))} (expected x and y)", source)
    try:
        x, y = (torch.as_tensor(np.asarray(arrays[key])) for key in ("x", "y"))
    except (TypeError, ValueError, RuntimeError) as error:
        raise _bad(path, f"x and y must be numeric arrays ({error})", source) from None
    if x.is_complex() or x.dtype == torch.bool or not 2 <= x.dim() <= 4:
        raise _bad(
            path,
            f"x must be real numbers shaped N×features, N×H×W or N×C×H×W, not {x.dtype} "
            f"{tuple(x.shape)}",
            source,
        )
    x = x.float().unsqueeze(1) if x.dim() == 3 else x.float()
    if not torch.isfinite(x).all():
        raise _bad(path, "x holds NaN or infinite values", source)
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise _bad(
            path, f"y must be a 1-D array of integer labels, not {y.dtype} {tuple(y.shape)}", source
        )
    if len(y) != len(x):
        raise _bad(path, f"x has {len(x)} samples but y has {len(y)} labels", source)
    return x, y.long(), _class_count(path, y.long(), source)


def _class_count(path: Path, y: torch.Tensor, source: str | None) -> int:
    """Labels 0..K-1 with every class present: K."""
    if len(y) < 2:
        raise _bad(path, f"{len(y)} samples: too few to split", source)
    if int(y.min()) < 0:
        raise _bad(path, f"label {int(y.min())} out of range (labels are 0 to K-1)", source)
    counts = torch.bincount(y)
    if len(counts) < 2:
        raise _bad(path, "every label is 0: a classifier needs at least 2 classes", source)
    empty = [str(k) for k in range(len(counts)) if counts[k] == 0]
    if empty:
        raise _bad(
            path,
            f"class {', '.join(empty[:5])} has no samples (labels go up to {len(counts) - 1}: "
            "use labels 0 to K-1, every one of them)",
            source,
        )
    return len(counts)


def read_image_folder(root: Path, source: str | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Every image under ``root/<class>/``, as N×C×H×W in 0..1, with class indices in the
    sorted order of the class folders (ImageFolder's)."""
    from PIL import Image

    if not root.is_dir():
        problem = "not found" if not root.exists() else "not a folder of class folders"
        raise _bad(root, problem, source)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if len(classes) < 2:
        raise _bad(root, f"{len(classes)} class folders: a classifier needs at least 2", source)
    images: list[np.ndarray] = []
    labels: list[int] = []
    first: Path | None = None
    for index, name in enumerate(classes):
        files = sorted(
            p
            for p in (root / name).iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise _bad(
                root / name, f"class {name!r} has no images ({', '.join(IMAGE_SUFFIXES)})", source
            )
        for file in files:
            regular_file(file, source=source, field=FIELD)
            try:
                with Image.open(file) as image:
                    pixels = np.asarray(image.convert("L" if len(image.getbands()) == 1 else "RGB"))
            except Exception as error:  # PIL raises OSError, ValueError, DecompressionBombError
                raise _bad(file, f"cannot read the image: {error}", source) from None
            if first is not None and pixels.shape[:2] != images[0].shape[:2]:
                raise _bad(
                    file,
                    f"is {pixels.shape[1]}×{pixels.shape[0]} pixels, {first.name} is "
                    f"{images[0].shape[1]}×{images[0].shape[0]}: every image must have one size",
                    source,
                )
            first = first or file
            images.append(pixels)
            labels.append(index)
    color = any(p.ndim == 3 for p in images)
    stacked = np.stack(
        [np.repeat(p[..., None], 3, axis=2) if color and p.ndim == 2 else p for p in images]
    )
    x = torch.from_numpy(stacked).float() / 255.0
    x = x.permute(0, 3, 1, 2) if color else x.unsqueeze(1)
    return x.contiguous(), torch.tensor(labels, dtype=torch.int64), len(classes)
