"""Well-known dataset names as data sources: ``mnist``, ``fashion-mnist``, ``cifar10`` (``:train`` / ``:test``).

Nothing is downloaded. The files are looked for, in this order, under

1. ``$AUDITOR_DATASETS`` (a folder holding ``mnist/``, ``fashion-mnist/``, ``cifar10/``);
2. the auditor's dataset cache, ``$AUDITOR_CACHE/datasets`` (default ``~/.cache/auditor/datasets``);
3. torchvision's layout (``MNIST/raw``, ``FashionMNIST/raw``) under ``$AUDITOR_CACHE/torchvision`` (where
   ``torchvision:`` sources keep their files) and under ``./data`` (the root of the torchvision tutorials).

MNIST and Fashion-MNIST are the four IDX files (``train-images-idx3-ubyte[.gz]``, ...); CIFAR-10 is
``train.npz`` / ``test.npz`` (or any ``*train*.npz`` / ``*test*.npz``) with ``x`` (N×32×32×3 uint8) and ``y``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from auditor.core.errors import DataError
from auditor.core.paths import cache_dir
from auditor.data.readers import _load_idx_dir, _load_npz

log = logging.getLogger(__name__)

KNOWN = ("mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "test")

# mean, std (per channel, of the training split in [0, 1]) and class names of the named datasets
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[str, ...]]] = {
    "mnist": ((0.1307,), (0.3081,), tuple(str(i) for i in range(10))),
    "fashion-mnist": ((0.2860,), (0.3530,), ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
    "digits": ((0.3,), (0.35,), tuple(str(i) for i in range(10))),
}
_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# sub-folders of a root that may hold each dataset: the auditor's layout, then torchvision's
_LAYOUTS = {"mnist": ("mnist", "MNIST/raw"), "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw"), "cifar10": ("cifar10",)}


def search_roots() -> list[tuple[Path, str]]:
    """Folders searched for well-known datasets, in order, each with where it comes from."""
    roots: list[tuple[Path, str]] = []
    env = os.environ.get("AUDITOR_DATASETS")
    if env:
        roots.append((Path(env).expanduser(), "AUDITOR_DATASETS"))
    roots.append((cache_dir() / "datasets", "the auditor's dataset cache"))
    roots.append((cache_dir() / "torchvision", "the torchvision: cache"))
    roots.append((Path("data"), "torchvision tutorials' root"))
    return roots


def _idx_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for stem in _IDX[split]:
        path = next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def _npz_file(folder: Path, split: str) -> Path | None:
    exact = folder / f"{split}.npz"
    if exact.is_file():
        return exact
    matches = sorted(folder.glob(f"*{split}*.npz")) if folder.is_dir() else []
    return matches[0] if len(matches) == 1 else None


def locate(name: str, split: str) -> tuple[Path | None, list[Path]]:
    """The folder holding ``name``'s ``split`` files (None when absent), and every folder looked at."""
    if name not in KNOWN:
        raise DataError(f"unknown dataset name {name!r}; well-known names are {', '.join(KNOWN)}")
    if split not in SPLITS:
        raise DataError(f"{name}: split must be 'train' or 'test', got {split!r} (write {name}:train or {name}:test)")
    tried: list[Path] = []
    for root, _ in search_roots():
        for layout in _LAYOUTS[name]:
            folder = root / layout
            tried.append(folder)
            hit = _npz_file(folder, split) if name == "cifar10" else _idx_files(folder, split)
            if hit is not None:
                return folder, tried
    return None, tried


def not_found_message(name: str, split: str, tried: list[Path]) -> str:
    files = (f"{split}.npz (arrays x: N×32×32×3 uint8, y: labels)" if name == "cifar10"
             else " and ".join(f"{stem}[.gz]" for stem in _IDX[split]))
    looked = ", ".join(str(p.resolve()) if not p.is_absolute() else str(p) for p in tried)
    return (f"dataset {name}:{split} not found (nothing is downloaded); looked for {files} in: {looked}. "
            f"Put the files in {cache_dir() / 'datasets' / _LAYOUTS[name][0]}, or set AUDITOR_DATASETS to a folder "
            f"holding {_LAYOUTS[name][0]}/, or pass the folder or file itself (DIR:{split}, FILE.npz)")


def load_known(name: str, split: str) -> tuple[object, object, tuple[str, ...] | None]:
    """``(images, labels, class names)`` of a well-known dataset as numpy arrays, read from disk."""
    folder, tried = locate(name, split)
    if folder is None:
        raise DataError(not_found_message(name, split, tried))
    log.info("%s:%s read from %s", name, split, folder)
    if name == "cifar10":
        x, y = _load_npz(_npz_file(folder, split))  # type: ignore[arg-type]
    else:
        x, y = _load_idx_dir(folder, split)
    return x, y, None if name == "mnist" else tuple(STATS[name][2])  # MNIST's classes are their indices
