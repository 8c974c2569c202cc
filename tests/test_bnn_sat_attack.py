"""The bnn_sat attack through its public contract."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from auditor.core.attack import Capability, RunContext
from auditor.core.errors import CapabilityError
from auditor.core.results import AttackResult
from auditor.data.sets import AuditData, LabeledImages
from auditor.models.model import from_module
from auditor_bnn_sat import BnnSatInversion, auditor_register_attacks
from auditor_bnn_sat.bnn import random_bnn
from auditor_bnn_sat.fold import extract_network

SHAPE = (1, 5, 5)


def _data(model, n=40, seed=0, reference=True):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, *SHAPE, generator=gen) > 0.5).float()
    with torch.no_grad():
        y = model(x).argmax(1)
    members = LabeledImages(x, y, "synthetic")
    ref = LabeledImages(1 - x, model(1 - x).argmax(1).detach(), "synthetic-ref") if reference else None
    return AuditData(members=members, reference=ref, num_classes=4, class_names=tuple("abcd"))


def _ctx(**kw):
    return RunContext(device=torch.device("cpu"), seed=0, show_progress=False, **kw)


def test_registration_and_contract():
    assert auditor_register_attacks() == [BnnSatInversion]
    assert BnnSatInversion.name == "bnn_sat"
    assert BnnSatInversion.requires == frozenset({Capability.PARAMETERS})
    for name, field in BnnSatInversion.Config.model_fields.items():
        assert field.description, f"config field {name} lacks a description"
    with pytest.raises(ValidationError):
        BnnSatInversion.Config(per_class=0)


@pytest.mark.parametrize("phases,strategy", [("relax", "direct"), ("seed", "decompose"), ("none", "direct")])
def test_smoke_run_returns_verified_preimages(phases, strategy):
    model = random_bnn([25, 12, 8, 4], SHAPE, seed=2)
    clf = from_module(model, num_classes=4, input_shape=SHAPE)
    data = _data(model)
    attack = BnnSatInversion(BnnSatInversion.Config(per_class=3, phases=phases, strategy=strategy))
    out = attack.run(clf, data, _ctx(smoke=True))
    assert out.reconstructions is not None and out.reconstructions.shape[1:] == SHAPE
    assert out.reconstructions.min() >= 0 and out.reconstructions.max() <= 1
    assert torch.equal(clf.predict(out.reconstructions), out.labels)
    assert len(out.labels) <= 4 * 2  # smoke: at most 2 per class
    for key in ("formula_variables", "formula_clauses", "formula_native_constraints", "time_class_0_s"):
        assert key in out.metrics
    table = out.tables[0]
    assert [row[0] for row in table.rows] == [0, 1, 2, 3]
    assert {row[2] for row in table.rows} <= {"sat", "unsat", "timeout"}
    assert base64.b64decode(out.figures[0].png_base64).startswith(b"\x89PNG")
    result = AttackResult(attack="bnn_sat", status="completed", metrics=out.metrics)
    findings = attack.assess(result)
    assert all(f.attack == "bnn_sat" for f in findings)


def test_unreachable_class_is_reported_as_proven():
    model = random_bnn([25, 12, 8, 4], SHAPE, seed=2)
    with torch.no_grad():
        model[-1].weight[3] = model[-1].weight[0]   # class 3 copies class 0 exactly ...
        model[-1].bias[3] = model[-1].bias[0]       # ... and loses every tie to it (torch.argmax)
    clf = from_module(model, num_classes=4, input_shape=SHAPE)
    out = BnnSatInversion(BnnSatInversion.Config(per_class=2, classes=[3])).run(clf, _data(model), _ctx(smoke=True))
    assert out.tables[0].rows[0][2] == "unsat"
    assert out.metrics["classes_unsat"] == 1 and out.reconstructions is None and not out.score
    findings = BnnSatInversion().assess(AttackResult(attack="bnn_sat", status="completed", metrics=out.metrics))
    assert any("unreachable" in f.title for f in findings)


def test_hamming_ball_robustness_mode():
    model = random_bnn([25, 12, 8, 4], SHAPE, seed=2)
    clf = from_module(model, num_classes=4, input_shape=SHAPE)
    data = _data(model)
    out = BnnSatInversion(BnnSatInversion.Config(per_class=2, hamming=2, phases="seed")).run(clf, data, _ctx(smoke=True))
    net = extract_network(clf)
    seeds = {}
    ok = (clf.predict(data.reference.images) == data.reference.labels).numpy()
    for t in range(4):
        idx = np.flatnonzero(ok & (data.reference.labels.numpy() == t))
        if len(idx):
            seeds[t] = net.to_bits(data.reference.images[idx[:1]])[0]
    if out.reconstructions is not None:
        bits = net.to_bits(out.reconstructions)
        for b, t in zip(bits, out.labels.tolist()):
            assert (b != seeds[t]).sum() <= 2


def test_non_binarised_model_is_skipped_with_reason():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(25, 4))
    clf = from_module(net, num_classes=4, input_shape=SHAPE)
    with pytest.raises(CapabilityError, match="not a binarised network: "):
        BnnSatInversion().run(clf, _data(random_bnn([25, 12, 4], SHAPE)), _ctx(smoke=True))


def test_deadline_is_honoured():
    import time

    from auditor.core.errors import AttackTimeout

    model = random_bnn([25, 12, 8, 4], SHAPE, seed=2)
    clf = from_module(model, num_classes=4, input_shape=SHAPE)
    with pytest.raises(AttackTimeout):
        BnnSatInversion().run(clf, _data(model), _ctx(deadline=time.monotonic() - 1))


def test_entry_point_registers_the_attack():
    from auditor.engine.plugins import collect_attacks, get_plugin_manager

    assert collect_attacks(get_plugin_manager(autoload=True))["bnn_sat"] is BnnSatInversion
