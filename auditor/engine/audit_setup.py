"""Before any attack: load the data, then the model (told the data's class count and image shape), check
that the model behaves, and run the preflight that decides whether the audit can mean anything."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from auditor.core.errors import DataError
from auditor.core.results import AttackResult, Finding, Preflight, Severity
from auditor.data.sets import (
    AuditData,
    assemble_audit_data,
    check_against_model,
    class_count,
    load_data_sets,
)
from auditor.engine.config import AuditConfig
from auditor.models.loaders import load_model
from auditor.models.model import Classifier
from auditor.models.preflight import run_preflight

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    model: Classifier
    data: AuditData | None
    behaviour: list[str] = field(default_factory=list)
    preflight: Preflight | None = None


def check_model_behaviour(model: Classifier, data: AuditData | None) -> list[str]:
    """Non-finite outputs and non-determinism, detected on real inputs before attacks run."""
    fits = data is not None and data.image_shape == tuple(model.input_shape)
    probe = data.members.images[:32] if fits else torch.rand((8, *model.input_shape), generator=torch.Generator().manual_seed(3))
    try:
        first, second = model.logits(probe), model.logits(probe)
    except Exception as exc:  # a model that fails on real inputs is reported, not run
        from auditor.core.errors import AuditorError

        if isinstance(exc, AuditorError):
            raise
        return [f"the model fails on {len(probe)} real inputs: {type(exc).__name__}: {str(exc)[:300]}"]
    problems = []
    if first.ndim != 2 or first.shape != second.shape:
        return [f"outputs shaped {list(first.shape)} and {list(second.shape)} for {len(probe)} images; expected [{len(probe)}, {model.num_classes}]"]
    if first.shape[1] != model.num_classes:
        problems.append(f"output size {first.shape[1]} disagrees with {model.num_classes} declared classes")
    if first.shape[0] != len(probe):
        problems.append(f"{first.shape[0]} output rows for {len(probe)} images")
    if problems:
        return problems
    if not torch.isfinite(first).all():
        problems.append(f"the model returns NaN or infinite outputs for {int((~torch.isfinite(first)).any(1).sum())} of {len(probe)} probe images")
    elif not torch.allclose(first, second, atol=1e-5, rtol=1e-5):
        problems.append(f"outputs change between identical calls (max difference {float((first - second).abs().max()):.3g})")
    return problems


def prepare(config: AuditConfig, pm, *, model: Classifier | None = None, data: AuditData | None = None) -> Prepared:
    """Model and data ready for the attacks. A model passed in keeps its preprocessing (the preflight only checks it)."""
    given = model is not None
    members = reference = None
    if data is None and config.data is not None:
        members, reference = load_data_sets(config.data)
        if reference is not None and reference.image_shape != members.image_shape:
            raise DataError(f"reference ({reference.source}) images are {list(reference.image_shape)} (C,H,W) and the members "
                            f"({members.source}) {list(members.image_shape)}: both sets must come from one distribution")
    if model is None:
        spec = config.model
        if members is not None:
            spec = spec.model_copy(update={"expected_classes": class_count(config.data, members, reference),
                                           "data_image_shape": members.image_shape})
        model = load_model(spec, pm)
    if config.run.device != "cpu":
        model.to(config.run.device)
    if members is not None:
        try:
            data = assemble_audit_data(config.data, members, reference, num_classes=model.num_classes, input_shape=None)
        except DataError as exc:
            if members.image_shape == tuple(model.input_shape):
                raise
            raise DataError(f"{exc}; and the members ({members.source}) images are {list(members.image_shape)} (C,H,W) while "
                            f"the model expects {list(model.input_shape)}: is this the model's data?") from exc
    prepared = Prepared(model, data, check_model_behaviour(model, data))
    if data is None or prepared.behaviour:
        return prepared
    spec = config.model
    prepared.preflight, prepared.data = run_preflight(
        model, data, config.preflight, transform_given=given or spec.preprocessing_given,
        layout_given=given or spec.layout != "auto", seed=config.run.seed)
    for role, images in (("members", prepared.data.members), ("reference", prepared.data.reference)):
        if images is not None:
            check_against_model(images, num_classes=model.num_classes, input_shape=model.input_shape, role=role)
    return prepared


def preflight_result(preflight: Preflight) -> AttackResult | None:
    """A HIGH finding when the audit runs below the floor (``--accept-low-accuracy``)."""
    if preflight.passed:
        return None
    finding = Finding(attack="core", title="The audit is not meaningful: the model does not classify its members",
                      severity=Severity.HIGH, metric="member_accuracy", value=preflight.member_accuracy, threshold=preflight.floor,
                      detail=f"Member accuracy {preflight.member_accuracy:.1%} is below the floor {preflight.floor:.1%}; the attacks "
                             "ran anyway (--accept-low-accuracy), and their scores measure nothing about what this model leaks.")
    return AttackResult(attack="preflight", status="completed", findings=[finding], reason=finding.detail)
