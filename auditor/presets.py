"""Named datasets on disk (MNIST, Fashion-MNIST, the CIFAR-10 subset, digits) with their statistics."""
from __future__ import annotations

from dataclasses import dataclass

from auditor.errors import DataError
from auditor.paths import datasets_dir


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    train: str
    test: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]


_STATS = {
    "mnist": ((0.1307,), (0.3081,), tuple(str(i) for i in range(10))),
    "fashion-mnist": ((0.2860,), (0.3530,), ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
    "digits": ((0.3,), (0.35,), tuple(str(i) for i in range(10))),
}


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
