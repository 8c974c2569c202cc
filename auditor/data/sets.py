"""The data the auditor holds: members (private training images) and a reference set.

Every image set is float32 NCHW in [0, 1] with int64 labels. Loaders validate what they
read and raise :class:`DataError` naming the file or index at fault.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from auditor.core.errors import DataError
from auditor.data.known import KNOWN, load_known
from auditor.data.readers import (
    _IDX_FILES,
    _load_digits,
    _load_idx_dir,
    _load_image_folder,
    _load_npz,
    _load_torchvision,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabeledImages:
    """A validated image set: ``images`` [N, C, H, W] float32 in [0, 1], ``labels`` [N] int64."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def of_class(self, label: int) -> torch.Tensor:
        return self.images[self.labels == label]

    def counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels, minlength=num_classes).tolist()

    def sha256(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.images.numpy().tobytes())
        digest.update(self.labels.numpy().tobytes())
        return digest.hexdigest()

    def subset(self, index: torch.Tensor | np.ndarray) -> LabeledImages:
        index = torch.as_tensor(index, dtype=torch.long)
        return LabeledImages(self.images[index], self.labels[index], self.source, self.class_names)


@dataclass(frozen=True)
class AuditData:
    """Members (the private training data) and, optionally, non-member reference data."""

    members: LabeledImages
    reference: LabeledImages | None
    num_classes: int
    class_names: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.members.image_shape

    def class_name(self, label: int) -> str:
        """The name of class ``label``, or its number when the data names fewer classes."""
        label = int(label)
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)


class DataConfig(BaseModel):
    """Where the auditor's data comes from (``[data]`` in audit.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    members: str = Field(description="Member (training) images: IDX dir[:split], .npz, image folder, or 'digits[:train|test]'.")
    reference: str | None = Field(None, description="Non-member images from the same distribution, same formats.")
    members_limit: int | None = Field(None, ge=1, description="Keep a class-balanced subset of this many members.")
    reference_limit: int | None = Field(None, ge=1, description="Keep a class-balanced subset of this many reference images.")
    subset_seed: int = Field(0, description="Seed of the class-balanced subset selection (training scripts use the same).")
    class_names: list[str] | None = Field(None, description="Names of the classes, in label order.")


def balanced_subset(labels: np.ndarray | torch.Tensor, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a class-balanced subset of ``n`` items (``n // K`` per class, remainder to the first classes).

    Deterministic for a seed; training scripts call it so the auditor can rebuild the exact member set.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    per_class = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    chosen: list[np.ndarray] = []
    for count, c in zip(per_class, classes):
        pool = np.flatnonzero(labels == c)
        if count > len(pool):
            raise DataError(f"class-balanced subset of {n} needs {count} images of class {c}, got {len(pool)}")
        chosen.append(np.sort(rng.choice(pool, size=count, replace=False)))
    return np.sort(np.concatenate(chosen))


# --------------------------------------------------------------------------- readers




def _to_tensor(x: np.ndarray, source: str) -> torch.Tensor:
    """Convert an image array (NHW, NHWC or NCHW; uint8 0-255 or float 0-1) to float32 NCHW in [0, 1]."""
    if x.dtype == object:
        raise DataError(f"{source}: image array has dtype object; expected numbers")
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = np.transpose(x, (0, 3, 1, 2))
        elif x.shape[1] not in (1, 3):
            raise DataError(f"{source}: cannot tell the channel axis of images shaped {x.shape}; expected 1 or 3 channels")
    else:
        raise DataError(f"{source}: expected images shaped [N,H,W], [N,H,W,C] or [N,C,H,W], got {list(x.shape)}")
    if x.shape[0] == 0:
        raise DataError(f"{source}: the image set is empty")
    if x.size == 0:
        raise DataError(f"{source}: images have a zero-sized dimension (shape {list(x.shape)})")
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{source}: integer pixels must lie in 0..255, got {x.min()}..{x.max()}")
        t = torch.from_numpy(np.ascontiguousarray(x).astype(np.float32) / 255.0)
    elif np.issubdtype(x.dtype, np.floating) or x.dtype == bool:
        x = x.astype(np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            index = int(np.argwhere(bad.reshape(bad.shape[0], -1).any(1))[0, 0])
            raise DataError(f"{source}: image {index} has NaN or infinite pixels")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{source}: float pixels must lie in [0, 1], got [{lo:g}, {hi:g}]")
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise DataError(f"{source}: unsupported pixel dtype {x.dtype}")
    return t.contiguous()


def _to_labels(y: np.ndarray, n: int, source: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be a 1-D array, got shape {list(y.shape)}")
    if len(y) != n:
        raise DataError(f"{source}: {n} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            if len(y) and np.abs(y).max() >= 2**31:
                raise DataError(f"{source}: label {y[np.argmax(np.abs(y))]:g} at index {int(np.argmax(np.abs(y)))} is not a class index")
            y = y.astype(np.int64)
        else:
            raise DataError(f"{source}: labels must be integers, got dtype {y.dtype}")
    if len(y) and np.issubdtype(y.dtype, np.unsignedinteger) and int(y.max()) >= 2**31:
        raise DataError(f"{source}: label {int(y.max())} at index {int(np.argmax(y))} is not a class index")
    if (y < 0).any():
        raise DataError(f"{source}: label {int(y.min())} at index {int(np.argmin(y))} is negative")
    return torch.from_numpy(y.astype(np.int64))


def load_images(source: str, *, limit: int | None = None, subset_seed: int = 0) -> LabeledImages:
    """Load one image set from a source string (see :class:`DataConfig`)."""
    names: tuple[str, ...] | None = None
    base, _, split = source.partition(":") if not Path(source).exists() else (source, "", "")
    path = Path(base)
    if base == "digits":
        x, y = _load_digits(split or "train")
        names = tuple(str(i) for i in range(10))
    elif base == "torchvision":
        x, y, names = _load_torchvision(split)
    elif base in KNOWN and not path.exists():
        x, y, names = load_known(base, split or "train")  # type: ignore[assignment]
    elif not path.exists():
        raise DataError(f"data source {source!r} not found: expected an IDX folder[:train|test], a .npz file, an image folder, "
                        f"'digits', or one of {', '.join(KNOWN)} (with :train or :test)")
    elif path.is_dir() and any((path / f"{stem}{gz}").is_file() for stems in _IDX_FILES.values() for stem in stems for gz in ("", ".gz")):
        x, y = _load_idx_dir(path, split or "train")
    elif path.is_dir():
        x, y, names = _load_image_folder(path)
    elif path.suffix == ".npz":
        x, y = _load_npz(path)
    else:
        raise DataError(f"unsupported data source {source!r}: expected an IDX folder[:train|test], a .npz file, an image folder, or 'digits'")
    images = _to_tensor(x, source)
    labels = _to_labels(y, images.shape[0], source)
    if limit is not None and limit < len(labels):
        keep = torch.from_numpy(balanced_subset(labels.numpy(), limit, subset_seed))
        images, labels = images[keep], labels[keep]
    return LabeledImages(images, labels, source, names)


def load_data_sets(config: DataConfig) -> tuple[LabeledImages, LabeledImages | None]:
    """Members and reference images as read, before they are checked against a model."""
    members = load_images(config.members, limit=config.members_limit, subset_seed=config.subset_seed)
    reference = None
    if config.reference:
        reference = load_images(config.reference, limit=config.reference_limit, subset_seed=config.subset_seed + 1)
    return members, reference


def class_count(config: DataConfig, members: LabeledImages, reference: LabeledImages | None) -> int:
    """How many classes the data speak of: the class names given, else the largest label + 1."""
    if config.class_names:
        return len(config.class_names)
    return 1 + max(int(s.labels.max()) for s in (members, reference) if s is not None and len(s))


def assemble_audit_data(config: DataConfig, members: LabeledImages, reference: LabeledImages | None, *, num_classes: int,
                        input_shape: tuple[int, int, int] | None) -> AuditData:
    """Check the sets against the model (``input_shape=None`` skips the shape check) and name the classes."""
    for role, images in (("members", members), ("reference", reference)):
        if images is None:
            continue
        check_against_model(images, num_classes=num_classes, input_shape=input_shape, role=role)
    names = tuple(config.class_names) if config.class_names else members.class_names or tuple(str(i) for i in range(num_classes))
    if len(names) != num_classes:
        raise DataError(f"{len(names)} class names given for a model with {num_classes} classes")
    return AuditData(members=members, reference=reference, num_classes=num_classes, class_names=names)


def load_audit_data(config: DataConfig, *, num_classes: int, input_shape: tuple[int, int, int]) -> AuditData:
    """Load members and reference data and check them against the model's classes and input shape."""
    members, reference = load_data_sets(config)
    return assemble_audit_data(config, members, reference, num_classes=num_classes, input_shape=input_shape)


def check_against_model(images: LabeledImages, *, num_classes: int, input_shape: tuple[int, int, int] | None, role: str) -> None:
    if len(images) == 0:
        raise DataError(f"{role} ({images.source}) is empty")
    if input_shape is not None and images.image_shape != tuple(input_shape):
        raise DataError(
            f"{role} ({images.source}) images are {list(images.image_shape)} (C,H,W); the model expects {list(input_shape)}"
        )
    top = int(images.labels.max())
    if top >= num_classes:
        index = int(torch.argmax((images.labels >= num_classes).int()))
        raise DataError(f"{role} ({images.source}): label {top} at index {index} is out of range for a model with {num_classes} classes")
