"""Readers for image files on disk: IDX (MNIST layout), ``.npz``, image folders, scikit-learn's digits, torchvision.

Each returns numpy arrays (images, labels[, class names]); :mod:`auditor.data.sets` validates and converts them.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from auditor.core.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}



def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data in a .gz
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"{path}: only unsigned-byte IDX data is supported, got type code {raw[2]:#x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(f"{path}: header promises {expected} bytes of data for shape {dims}, file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory} has no {stem}[.gz]")


def _load_idx_dir(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _IDX_FILES:
        raise DataError(f"IDX split must be one of {sorted(_IDX_FILES)}, got {split!r}")
    image_stem, label_stem = _IDX_FILES[split]
    images = _read_idx(_find(directory, image_stem))
    labels = _read_idx(_find(directory, label_stem))
    return images, labels


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise DataError(f"{path}: expected arrays 'x' and 'y', missing {sorted(missing)} (has {archive.files})")
            return np.asarray(archive["x"]), np.asarray(archive["y"])
    except DataError:
        raise
    except Exception as exc:  # zipfile/pickle/value errors from a broken archive
        raise DataError(f"cannot read {path} as .npz: {exc}") from exc


def _load_image_folder(directory: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(p for p in directory.iterdir() if p.is_dir())
    if not class_dirs:
        raise DataError(f"{directory}: an image folder needs one sub-folder per class, found none")
    names = tuple(p.name for p in class_dirs)
    if all(n.isdigit() for n in names):
        class_dirs.sort(key=lambda p: int(p.name))
        names = tuple(p.name for p in class_dirs)
    arrays, labels, first_shape, first_file = [], [], None, None
    for label, class_dir in enumerate(class_dirs):
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    img.load()
                    array = np.asarray(img.convert("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB"))
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DataError(f"unreadable image file {file}: {exc}") from exc
            except Exception as exc:  # decompression bombs, SyntaxError/struct.error from broken headers, ...
                raise DataError(f"unreadable image file {file}: {type(exc).__name__}: {exc}") from exc
            if first_shape is None:
                first_shape, first_file = array.shape, file
            elif array.shape != first_shape:
                raise DataError(
                    f"images of mixed sizes: {file} is {array.shape}, {first_file} is {first_shape}; resize them to one size"
                )
            arrays.append(array)
            labels.append(label)
    if not arrays:
        raise DataError(f"{directory}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in its class folders")
    return np.stack(arrays), np.asarray(labels), names


def _load_torchvision(spec: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """``torchvision:NAME[:train|test]``: a convenience that downloads into the auditor cache when a network exists."""
    import torchvision

    from auditor.core.paths import cache_dir

    name, _, split = spec.partition(":")
    dataset_cls = getattr(torchvision.datasets, name, None)
    if dataset_cls is None:
        raise DataError(f"torchvision has no dataset {name!r}")
    root = cache_dir() / "torchvision"
    try:
        dataset = dataset_cls(str(root), train=(split or "train") == "train", download=True)
    except Exception as exc:  # no network, bad checksum, ...
        raise DataError(f"torchvision:{spec} could not be loaded or downloaded into {root}: {exc}; "
                        "download it yourself and pass the IDX folder, .npz or image folder") from exc
    x, y = np.asarray(dataset.data), np.asarray(dataset.targets)
    return x, y, tuple(getattr(dataset, "classes", []) or []) or None


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    # deterministic split: every third image of each class is held out
    order = np.arange(len(labels))
    held_out = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = order[labels == c]
        held_out[idx[::3]] = True
    if split not in ("train", "test"):
        raise DataError(f"digits split must be 'train' or 'test', got {split!r}")
    keep = ~held_out if split == "train" else held_out
    tensor = torch.from_numpy(images[keep]).float().unsqueeze(1) / 255.0
    up = torch.nn.functional.interpolate(tensor, size=(32, 32), mode="bilinear", align_corners=False)
    return (up.clamp(0, 1) * 255.0).round().to(torch.uint8).squeeze(1).numpy(), labels[keep]
