"""Named datasets on disk (MNIST, Fashion-MNIST, the CIFAR-10 subset, digits) with their statistics."""
from __future__ import annotations

from dataclasses import dataclass

from auditor.core.errors import DataError
from auditor.core.paths import datasets_dir
from auditor.data.known import STATS


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    train: str
    test: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]


_STATS = STATS  # kept for callers of the old private name


PRESETS = tuple(_STATS)


def preset(name: str) -> DatasetPreset:
    """Sources and statistics of a named dataset; MNIST-like sets are read from ``datasets_dir()``."""
    if name not in _STATS:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(_STATS)}")
    mean, std, names = _STATS[name]
    if name == "digits":
        return DatasetPreset(name, "digits:train", "digits:test", mean, std, names)
    root = datasets_dir()
    if root is None:
        raise DataError(f"dataset {name!r} needs the shared datasets folder: set AUDITOR_DATASETS")
    if name == "cifar10":
        return DatasetPreset(name, str(root / "cifar10" / "cifar10_train_first4000.npz"), str(root / "cifar10" / "cifar10_test_first1000.npz"),
                         mean, std, names)
    return DatasetPreset(name, f"{root / name}:train", f"{root / name}:test", mean, std, names)
