"""One cell of the shortcut study: data, training one architecture at one learning rate, tests, inversion."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import torch

from auditor import (
    DataError,
    LabeledImages,
    RunContext,
    UsageError,
    from_module,
    load_images,
)
from auditor.lab import PRESETS, preset, zoo
from auditor_shortcut.evidence import inversion_regions, patch_presence
from auditor_shortcut.planting import Shortcut
from auditor_shortcut.probe import auto_patch_size, probe, within_cell

log = logging.getLogger(__name__)



@dataclass
class StudyData:
    name: str
    train: LabeledImages
    test: LabeledImages
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int


def load_study_data(dataset: str, *, train_size: int, test_size: int, seed: int, test_source: str | None = None) -> StudyData:
    """A named dataset (mnist, fashion-mnist, cifar10, digits) or any core source string plus ``test_source``."""
    if dataset in PRESETS:
        try:
            ds = preset(dataset)
        except DataError as exc:
            raise UsageError(str(exc)) from exc
        train_src, test_src, mean, std = ds.train, ds.test, ds.mean, ds.std
    else:
        if test_source is None:
            raise UsageError(f"--dataset {dataset!r} is not one of {sorted(PRESETS)}; a source string also needs --test-source")
        train_src, test_src, mean, std = dataset, test_source, (), ()
    train = load_images(train_src, limit=train_size, subset_seed=seed)
    test = load_images(test_src, limit=test_size, subset_seed=seed + 1)
    if train.image_shape != test.image_shape:
        raise UsageError(f"train images are {list(train.image_shape)} but test images are {list(test.image_shape)}")
    if not mean:
        mean = tuple(float(v) for v in train.images.mean((0, 2, 3)))
        std = tuple(max(float(v), 1e-3) for v in train.images.std((0, 2, 3)))
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    return StudyData(dataset, train, test, mean, std, num_classes)


@dataclass
class CellResult:
    """Measurements of one trained model (one row of the study)."""

    arch: str
    lr: float
    acc_with: float          # test set, every image with its class's shortcut
    acc_without: float       # clean test set
    drop: float              # acc_with - acc_without: reliance on the shortcut
    acc_conflict: float      # test images carrying another class's shortcut
    follows_patch: float     # share of the conflicting set predicted as the patch's class
    acc_train: float         # on (up to) the first 2,000 shortcut training images
    train_seconds: float
    probe_max_pull: float = float("nan")
    probe_hijacked: int = -1
    probe_found: int = -1    # classes whose best probe patch lies within one grid cell of the planted one
    probe_seconds: float = 0.0

    @property
    def relative_drop(self) -> float:
        """Share of the accuracy with the shortcut that is lost without it."""
        return self.drop / self.acc_with if self.acc_with > 0 else float("nan")

    def as_dict(self) -> dict[str, float | str | int]:
        return {**asdict(self), "relative_drop": self.relative_drop}


@dataclass
class ProbeSettings:
    stride: int = 2
    levels: tuple[float, ...] = (0.5, 1.0)
    refine_levels: int = 9
    search_per_class: int = 5
    confirm_per_class: int = 30
    pull_high: float = 0.5


def train_cell(arch: str, lr: float, data: StudyData, shortcut: Shortcut, *, epochs: int, seed: int,
               batch_size: int = 64) -> tuple[torch.nn.Module, CellResult]:
    """Train ``arch`` on the shortcut training set and measure it on the with/without/conflicting test sets."""
    torch.manual_seed(seed)
    x_train, _ = shortcut.plant(data.train.images, data.train.labels, seed=seed)
    net = zoo.build(arch, data.train.image_shape, data.num_classes)  # type: ignore[arg-type]
    start = time.monotonic()
    zoo.train(net, x_train, data.train.labels, mean=data.mean, std=data.std, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    seconds = time.monotonic() - start
    y = data.test.labels
    with_x = shortcut.apply(data.test.images, y)
    conflict_codes = shortcut.conflicting_codes(y, seed=seed + 7)
    conflict_x = shortcut.apply(data.test.images, conflict_codes)
    def acc(x, t):
        return zoo.accuracy(net, x, t, data.mean, data.std)
    acc_with, acc_without = acc(with_x, y), acc(data.test.images, y)
    row = CellResult(arch, lr, acc_with, acc_without, acc_with - acc_without, acc(conflict_x, y), acc(conflict_x, conflict_codes),
                     acc(x_train[:2000], data.train.labels[:2000]), seconds)
    log.info("%s lr=%g: with %.3f without %.3f drop %.3f (%.0f s)", arch, lr, acc_with, acc_without, row.drop, seconds)
    return net, row


def probe_cell(net: torch.nn.Module, row: CellResult, data: StudyData, shortcut: Shortcut, settings: ProbeSettings) -> None:
    """Run the audit probe on the clean test images and compare what it finds with the planted patches."""
    _, height, width = data.test.image_shape
    model = from_module(net, num_classes=data.num_classes, input_shape=data.test.image_shape, mean=data.mean, std=data.std)
    g = torch.Generator().manual_seed(11)
    search, confirm = [], []
    for k in range(data.num_classes):
        idx = (data.test.labels == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        search.append(idx[:settings.search_per_class])
        confirm.append(idx[settings.search_per_class:settings.search_per_class + settings.confirm_per_class])
    s, c = torch.cat(search), torch.cat(confirm)
    size = min(shortcut.size, auto_patch_size(height, width, 0.02))
    refine = [i / (settings.refine_levels - 1) for i in range(settings.refine_levels)] if settings.refine_levels > 1 else []
    start = time.monotonic()
    result = probe(model, (data.test.images[s], data.test.labels[s]), (data.test.images[c], data.test.labels[c]), size=size,
                   stride=settings.stride, levels=list(settings.levels), refine_levels=refine)
    row.probe_seconds = time.monotonic() - start
    row.probe_max_pull = max(b.pull for b in result.best)
    row.probe_hijacked = sum(b.pull >= settings.pull_high for b in result.best)
    row.probe_found = sum(within_cell((b.row, b.col), shortcut.positions[b.target], settings.stride) for b in result.best)


@dataclass
class InversionCell:
    arch: str
    lr: float
    steps: int
    seconds: float
    hit_rate: float
    presence: list[float]      # per class, 0 = no square at the planted spot, 1 = the patch as planted
    control: list[float]       # the same at the other classes' spots (no patch expected)
    at_planted: int            # classes whose most localised difference window sits on the planted patch
    lift_ratio_mean: float
    images: torch.Tensor
    labels: torch.Tensor


def invert_cell(net: torch.nn.Module, arch: str, lr: float, data: StudyData, shortcut: Shortcut, *, seconds: float,
                samples: int, seed: int) -> InversionCell:
    """Train the inversion generator on one model and measure whether the planted patch appears."""
    from auditor_inversion.engine import (
        InversionSettings,
        build_generator,
        sample,
        train_generator,
    )

    model = from_module(net, num_classes=data.num_classes, input_shape=data.train.image_shape, mean=data.mean, std=data.std)
    settings = InversionSettings(train_seconds=seconds, steps=100000, batch_size=64, soft_temperature=1.0)
    generator = build_generator(data.num_classes, data.train.image_shape, settings)
    ctx = RunContext(device=torch.device("cpu"), seed=seed, show_progress=False)
    train_log = train_generator(model.module(), generator, settings, ctx, desc=f"inversion {arch}")
    labels = torch.arange(data.num_classes).repeat_interleave(samples)
    images = sample(generator, labels, settings, hot=True, seed=seed + 1)
    hit = float((model.predict(images) == labels).float().mean())
    presence, control = patch_presence(images, labels, data.test.images, data.test.labels, shortcut.positions, shortcut.intensities,
                              shortcut.size)
    regions = inversion_regions(images, labels, data.test.images, data.test.labels, data.num_classes, shortcut.size)
    at_planted = sum(within_cell((r.row, r.col), shortcut.positions[r.target], 1) for r in regions)
    lift = sum(r.ratio for r in regions) / max(len(regions), 1)
    return InversionCell(arch, lr, train_log.steps, train_log.seconds, hit, presence, control, at_planted, lift, images, labels)
