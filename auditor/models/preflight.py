"""The preflight: can this audit mean anything? Measured before any attack runs.

It measures top-1 accuracy and cross-entropy on class-balanced samples of members and reference
images. When the user gave no preprocessing it tries the usual ones (input ranges, mean/std sets,
layouts, flatten orders, and fits of the data's image size and channels to the model's input) and
keeps the one under which the model classifies its own members best. A model that classifies the
members at no better than the floor stops the audit with exit 2: its verdict would measure nothing.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from auditor.core.errors import AuditorError
from auditor.core.results import Preflight, PreprocessCandidate
from auditor.data.sets import AuditData, LabeledImages
from auditor.models.image_fit import fit_images, fits_for
from auditor.models.model import Classifier, Preprocess

log = logging.getLogger(__name__)

NORMALISATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "ImageNet mean/std": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "CIFAR-10 mean/std": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "MNIST mean/std": ((0.1307,), (0.3081,)),
    "Fashion-MNIST mean/std": ((0.2860,), (0.3530,)),
}


class PreflightError(AuditorError):
    """The model does not classify the auditor's data; the audit would be meaningless (exit 2)."""


class PreflightSettings(BaseModel):
    """``[preflight]``: how the model's accuracy on the data is checked before attacks run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    floor: float | None = Field(None, ge=0, le=1, description="Lowest member accuracy for a meaningful audit; "
                                                               "default: the larger of 0.3 and chance + 0.2.")
    accept_low_accuracy: bool = Field(False, description="Run the attacks even below the floor; the report then carries a HIGH "
                                                         "finding that the audit is not meaningful.")
    accept_class_permutation: bool = Field(False, description="Use the class order the preflight found when it fits much better.")
    search_per_class: int = Field(20, ge=1, description="Members per class used to compare preprocessing candidates.")
    measure_per_class: int = Field(50, ge=1, description="Members and reference images per class for the reported accuracy.")

    def floor_for(self, num_classes: int) -> float:
        return self.floor if self.floor is not None else max(0.3, 1.0 / num_classes + 0.2)


@dataclasses.dataclass
class _Candidate:
    name: str
    preprocess: Preprocess
    fit: str | None
    accuracy: float = 0.0
    cross_entropy: float = float("inf")
    logits: torch.Tensor | None = None

    def score(self, labels: torch.Tensor) -> None:
        self.accuracy, self.cross_entropy = _scores(self.logits, labels)  # type: ignore[arg-type]


def balanced_sample(images: LabeledImages, per_class: int, seed: int = 0) -> LabeledImages:
    """Up to ``per_class`` images of each class, chosen with a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label in torch.unique(images.labels).tolist():
        idx = torch.nonzero(images.labels == label).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return images.subset(torch.sort(torch.cat(keep)).values)


def _scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    if not torch.isfinite(logits).all():
        return 0.0, float("inf")
    return float((logits.argmax(1) == labels).float().mean()), float(F.cross_entropy(logits.double(), labels))


def _measure(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    logits = model.logits(images)
    return (*_scores(logits, labels), logits.argmax(1))


def _transforms(sample: torch.Tensor, channels: int) -> list[tuple[str, dict]]:
    """The pixel transforms to try, simplest first; ``sample`` is already fitted to the model's input."""
    mean = sample.mean(dim=(0, 2, 3)).tolist()
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    found = [("[0, 1]", {"input_range": (0.0, 1.0), "mean": None, "std": None}),
             ("[0, 255]", {"input_range": (0.0, 255.0), "mean": None, "std": None}),
             ("[-1, 1]", {"input_range": (-1.0, 1.0), "mean": None, "std": None}),
             ("members' mean/std", {"input_range": (0.0, 1.0), "mean": tuple(mean), "std": tuple(std)})]
    return found + [(name, {"input_range": (0.0, 1.0), "mean": m, "std": s})
                    for name, (m, s) in NORMALISATIONS.items() if len(m) == channels]


def candidates(model: Classifier, sample: torch.Tensor, *, transform_given: bool, layout_given: bool) -> list[_Candidate]:
    """Every (preprocessing, layout, fit of the images) to try, simplest first."""
    base = model.preprocess
    layouts = [base.channels_last]
    if not layout_given and getattr(getattr(model, "layout", None), "both_layouts", False):
        layouts = [False, True]
    flat = base.target is not None and (len(base.target) == 1 or base.target[-1] == 1)
    out = []
    for fit in fits_for(tuple(sample.shape[1:]), model.input_shape):
        fitted = sample if fit is None else fit_images(sample, model.input_shape, fit)
        transforms = [("as given", {})] if transform_given else _transforms(fitted, model.input_shape[0])
        for channels_last in layouts:
            for name, changes in transforms:
                label = name
                if len(layouts) > 1:
                    order = ("HWC" if channels_last else "CHW") if flat else ("NHWC" if channels_last else "NCHW")
                    label += f", {'flatten ' if flat else ''}{order}"
                if fit:
                    label += f", images {fit}"
                out.append(_Candidate(label, base.like(channels_last=channels_last, **changes), fit))
    return out


def _describe(c: _Candidate) -> PreprocessCandidate:
    d = c.preprocess.describe()
    return PreprocessCandidate(name=c.name, input_range=d["input_range"], mean=d["mean"], std=d["std"], layout=d["layout"],
                               flatten=d["flatten"], adaptation=c.fit, member_accuracy=round(c.accuracy, 4),
                               member_cross_entropy=round(c.cross_entropy, 4) if c.cross_entropy != float("inf") else 1e9)


CE_TIE = 0.05       # cross-entropies within 5% of the lowest are a tie ...
CE_CONFIDENT = 0.1  # ... and so are all below 0.1 nats: a model confident under both says nothing about which is right


def choose(found: list[_Candidate], sample_size: int) -> _Candidate:
    """Highest accuracy; ties broken by cross-entropy, then by simplicity (the candidates' order).

    Accuracies within one image of the best tie. Cross-entropies tie within 5% of the lowest, or when
    below 0.1 nats: scaling the input of a network that already classifies every image right only
    sharpens its softmax (lower cross-entropy at [0, 255] than at the true [0, 1]), which must not win.
    """
    best = max(c.accuracy for c in found)
    tied = [c for c in found if c.accuracy >= best - 1.0 / max(sample_size, 1) + 1e-9]
    lowest = min(c.cross_entropy for c in tied)
    return next(c for c in tied if c.cross_entropy <= max(lowest * (1 + CE_TIE), CE_CONFIDENT) + 1e-9)


def _permutation(tried: list[_Candidate], labels: torch.Tensor, num_classes: int,
                 floor: float) -> tuple[list[int] | None, float | None]:
    """The class order under which some candidate classifies much better (by 0.2 and above the floor), if any."""
    best_plain = max(c.accuracy for c in tried)
    if best_plain >= 0.9:
        return None, None
    found = [(*class_permutation(c.logits.argmax(1), labels, num_classes), c) for c in tried]  # type: ignore[union-attr]
    mapping, accuracy, _ = max(found, key=lambda f: f[1])
    if mapping == list(range(num_classes)) or accuracy < max(floor, best_plain + 0.2):
        return None, None
    return mapping, accuracy


def class_permutation(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[list[int], float]:
    """The class order that best explains the predictions (assignment on the confusion matrix), and its accuracy."""
    from scipy.optimize import linear_sum_assignment

    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
    mapping = list(range(num_classes))
    for r, c in zip(rows.tolist(), cols.tolist()):
        mapping[r] = c
    return mapping, float(confusion[rows, cols].sum()) / max(len(labels), 1)


def relabel(data: AuditData, mapping: list[int]) -> AuditData:
    """Data whose label ``c`` becomes the model's class ``mapping[c]`` (names follow their classes)."""
    table = torch.tensor(mapping)
    names = list(data.class_names)
    renamed = list(names)
    for c, m in enumerate(mapping):
        renamed[m] = names[c]

    def move(images: LabeledImages | None) -> LabeledImages | None:
        return None if images is None else dataclasses.replace(images, labels=table[images.labels], class_names=tuple(renamed))

    return dataclasses.replace(data, members=move(data.members), reference=move(data.reference), class_names=tuple(renamed))


def refit_data(data: AuditData, fit: str | None, shape: tuple[int, int, int]) -> AuditData:
    if fit is None:
        return data

    def move(images: LabeledImages | None) -> LabeledImages | None:
        return None if images is None else dataclasses.replace(images, images=fit_images(images.images, shape, fit))

    return dataclasses.replace(data, members=move(data.members), reference=move(data.reference))


def _suggestion(model: Classifier, search: LabeledImages, layout_given: bool) -> str:
    """For flags that fail: what the preflight would choose without them."""
    given = model.preprocess
    found = candidates(model, search.images, transform_given=False, layout_given=layout_given)
    for c in found:
        model.set_preprocess(c.preprocess)
        c.logits = model.logits(search.images if c.fit is None else fit_images(search.images, model.input_shape, c.fit))
        c.score(search.labels)
    model.set_preprocess(given)
    best = choose(found, len(search))
    d = best.preprocess.describe()
    flags = f"--input-range {d['input_range'][0]:g},{d['input_range'][1]:g}" + (
        f" --mean {','.join(f'{v:g}' for v in d['mean'])} --std {','.join(f'{v:g}' for v in d['std'])}" if d["mean"] else "")
    return f"without the preprocessing flags the preflight would choose {best.name} ({best.accuracy:.1%}: {flags}); "


def _floor_message(model: Classifier, tried: list[_Candidate], accuracy: float, floor: float, permuted: float | None,
                   suggestion: str = "") -> str:
    best = sorted(tried, key=lambda c: -c.accuracy)[:5]
    listing = "; ".join(f"{c.name}: {c.accuracy:.1%}" for c in best)
    hint = suggestion + ("pass the model's preprocessing (--input-range LO,HI, --mean/--std, --layout NCHW|NHWC, --input-shape C,H,W), "
            "check the class-score output (--output-name) and that the data are the model's own classes")
    if permuted is not None:
        hint = f"a different class order reaches {permuted:.1%}: --accept-class-permutation uses it; or " + hint
    return (f"preflight: the model classifies its members at {accuracy:.1%} top-1, below the floor of {floor:.1%} "
            f"(chance is {1 / model.num_classes:.1%}), so an audit would measure nothing. Tried {len(tried)} preprocessing "
            f"candidate(s), best first: {listing}. To fix: {hint}. --accept-low-accuracy runs it anyway (the report then says it "
            "is not meaningful).")


def run_preflight(model: Classifier, data: AuditData, settings: PreflightSettings, *, transform_given: bool,
                  layout_given: bool, seed: int = 0) -> tuple[Preflight, AuditData]:
    """Choose (or check) the preprocessing, measure accuracy; returns the report section and the data as fitted.

    Raises :class:`PreflightError` below the floor unless ``settings.accept_low_accuracy``.
    """
    start, passes = time.monotonic(), 0
    search = balanced_sample(data.members, settings.search_per_class, seed)
    tried = candidates(model, search.images, transform_given=transform_given, layout_given=layout_given)
    for c in tried:
        model.set_preprocess(c.preprocess)
        c.logits = model.logits(search.images if c.fit is None else fit_images(search.images, model.input_shape, c.fit))
        c.score(search.labels)
        passes += len(search)
    floor = settings.floor_for(model.num_classes)
    notes: list[str] = []
    mapping, permuted = _permutation(tried, search.labels, model.num_classes, floor)
    applied = False
    if mapping is not None:
        notes.append(f"the model's classes fit the data's much better in another order ({permuted:.1%} of a sample instead of "
                     f"{max(c.accuracy for c in tried):.1%}); data class c is model class {mapping}[c]")
        if settings.accept_class_permutation:
            data, applied = relabel(data, mapping), True
            relabelled = torch.tensor(mapping)[search.labels]
            for c in tried:
                c.score(relabelled)
            notes.append("the class order was changed as found (--accept-class-permutation)")
    chosen = choose(tried, len(search))
    model.set_preprocess(chosen.preprocess)
    data = refit_data(data, chosen.fit, model.input_shape)
    members = balanced_sample(data.members, settings.measure_per_class, seed + 1)
    accuracy, ce, _ = _measure(model, members.images, members.labels)
    passes += len(members)
    reference_accuracy = reference_ce = None
    reference_n = 0
    if data.reference is not None:
        reference = balanced_sample(data.reference, settings.measure_per_class, seed + 2)
        reference_accuracy, reference_ce, _ = _measure(model, reference.images, reference.labels)
        reference_n, passes = len(reference), passes + len(reference)
    passed = accuracy >= floor
    if not passed and not settings.accept_low_accuracy:
        suggestion = _suggestion(model, search, layout_given) if transform_given and tried[0].fit is None else ""
        raise PreflightError(_floor_message(model, tried, accuracy, floor, None if applied else permuted, suggestion))
    if chosen.fit:
        notes.append(f"the data's images were fitted to the model's input {list(model.input_shape)}: {chosen.fit}")
    result = Preflight(
        chosen=chosen.name, chosen_by="user" if transform_given else "preflight", member_accuracy=round(accuracy, 4),
        member_cross_entropy=round(ce, 4), member_sample=len(members), reference_accuracy=None if reference_accuracy is None
        else round(reference_accuracy, 4), reference_cross_entropy=None if reference_ce is None else round(reference_ce, 4),
        reference_sample=reference_n, accuracy_gap=None if reference_accuracy is None else round(accuracy - reference_accuracy, 4),
        floor=round(floor, 4), passed=passed, overridden=not passed, candidates=[_describe(c) for c in tried],
        class_permutation=mapping, permuted_accuracy=None if permuted is None else round(permuted, 4), permutation_applied=applied,
        forward_passes=passes, duration_s=round(time.monotonic() - start, 3), notes=notes)
    log.info("preflight: %s", result.sentence())
    return result, data
