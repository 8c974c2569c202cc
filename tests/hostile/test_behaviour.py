"""Models that load but misbehave on real inputs: detected, reported, never silently scored.

The runner probes the model twice on the members before any attack. NaN/inf outputs, outputs that
change between identical calls, output sizes that disagree with the classes, and models that fail on
real inputs give a HIGH finding "The model misbehaves on real inputs" (exit 1 at the default gate),
a failed ``model-check`` result, no attack run, and a written report that records the file's
provenance (sha256, size, format, opset, producer).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import helper

FACTORIES = '''
import torch
from auditor.lab.testing import TinyNet


class Noisy(TinyNet):
    def forward(self, x):
        return super().forward(x) + torch.randn(x.shape[0], 3)


class SmallBatchesOnly(TinyNet):
    def forward(self, x):
        if x.shape[0] > 8:
            raise ValueError(f"batch of {x.shape[0]} is too large for this model")
        return super().forward(x)


class OneRow(TinyNet):
    def forward(self, x):
        return super().forward(x)[:1]


def noisy():
    return Noisy().eval()


def small_batches_only():
    return SmallBatchesOnly().eval()


def one_row():
    return OneRow().eval()
'''


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[SimpleNamespace], list]
    pattern: str
    code: int = 1


def _onnx(c: SimpleNamespace, *nodes, **kw) -> list:
    path = c.tmp / "model.onnx"
    onnx.save(c.onnx(extra_nodes=list(nodes), **kw), str(path))
    return [path, "--members", c.members]


def _batch_dependent(c: SimpleNamespace) -> list:
    proto = c.onnx(extra_nodes=[helper.make_node("Transpose", ["f"], ["ft"], perm=[1, 0]), helper.make_node("MatMul", ["f", "ft"], ["logits"])])
    proto.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "N"
    path = c.tmp / "model.onnx"
    onnx.save(proto, str(path))
    keep = c.y < 2  # two classes: what the 2-image load probe makes the model declare
    np.savez(c.tmp / "two.npz", x=c.x[keep], y=c.y[keep])
    return [path, "--members", c.tmp / "two.npz"]


def _factory(c: SimpleNamespace, name: str) -> list:
    return [f"factory:hostile_factories:{name}", "--input-shape", "1,16,16", "--members", c.members]


def _nan() -> list:  # 0 / 0
    return [helper.make_node("Sub", ["g", "g"], ["z"]), helper.make_node("Div", ["z", "z"], ["logits"])]


def _inf() -> list:  # 1 / 0
    return [helper.make_node("Sub", ["g", "g"], ["z"]), helper.make_node("Reciprocal", ["z"], ["logits"])]


def _noise() -> list:  # unseeded RandomUniformLike: a different draw on every call
    return [helper.make_node("RandomUniformLike", ["g"], ["r"]), helper.make_node("Add", ["g", "r"], ["logits"])]


CASES = [
    Case("onnx-nan-outputs", lambda c: _onnx(c, *_nan()), r"NaN or infinite outputs for 32 of 32 probe images"),
    Case("onnx-inf-outputs", lambda c: _onnx(c, *_inf()), r"NaN or infinite outputs for 32 of 32 probe images"),
    Case("onnx-random-outputs", lambda c: _onnx(c, *_noise()), r"outputs change between identical calls \(max difference"),
    Case("onnx-output-size-follows-batch", _batch_dependent, r"output size 24 disagrees with 2 declared classes"),
    Case("torch-random-outputs", lambda c: _factory(c, "noisy"), r"outputs change between identical calls"),
    Case("torch-fails-on-real-batch", lambda c: _factory(c, "small_batches_only"),
         r"the model fails on 32 real inputs: ValueError: batch of 32 is too large"),
    Case("torch-one-output-row", lambda c: _factory(c, "one_row"), r"1 output rows for 32 images"),
    Case("onnx-nan-outputs-gate-never", lambda c: [*_onnx(c, *_nan()), "--fail-on", "never"], r"NaN or infinite outputs", code=3),
]


@pytest.fixture
def behaviour_ctx(tmp_path, audit_data, members_npz, onnx_model, monkeypatch):
    (tmp_path / "hostile_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return SimpleNamespace(tmp=tmp_path, onnx=onnx_model, members=members_npz, x=audit_data.members.images.numpy(),
                           y=audit_data.members.labels.numpy())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_misbehaving_model_is_reported_not_scored(case, behaviour_ctx, cli, corpus, monkeypatch):
    import auditor.engine.runner

    monkeypatch.setattr(auditor.engine.runner, "run_attack", lambda *a, **k: pytest.fail("an attack ran on a misbehaving model"))
    out_dir = behaviour_ctx.tmp / "report"
    code, out, err = cli("run", *case.build(behaviour_ctx), "--out", out_dir)
    report = json.loads((out_dir / "report.json").read_text())
    check = report["results"][0]
    corpus("behaviour", case.id, code, check["reason"], report_ok=True)
    assert code == case.code, (code, out, err)
    assert [r["attack"] for r in report["results"]] == ["model-check"] and check["status"] == "failed"
    assert re.search(case.pattern, check["reason"]), check["reason"]
    assert check["findings"][0]["severity"] == "high" and check["findings"][0]["title"] == "The model misbehaves on real inputs"
    assert re.search(case.pattern, " ".join(report["model"]["warnings"]))
    assert "The model misbehaves on real inputs" in out
    model = report["model"]
    if model["format"] == "onnx":
        assert len(model["sha256"]) == 64 and model["size_bytes"] > 0
        assert model["opset"] == 17 and model["producer"] == "auditor-tests 1"
    assert (out_dir / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_provenance_is_recorded_before_the_model_runs(tmp_path, onnx_model, monkeypatch):
    """sha256, size, format, opset and producer are read from the file before onnxruntime sees it."""
    import hashlib

    import onnxruntime

    import auditor.models.onnx_loader
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    path = tmp_path / "m.onnx"
    onnx.save(onnx_model(), str(path))
    events: list = []
    real_info, real_session = auditor.models.onnx_loader.ModelInfo, onnxruntime.InferenceSession

    def info(**kwargs):
        events.append(("info", kwargs))
        return real_info(**kwargs)

    def session(*args, **kwargs):
        events.append(("session", None))
        return real_session(*args, **kwargs)

    monkeypatch.setattr(auditor.models.onnx_loader, "ModelInfo", info)
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    model = load_model(ModelSpec(source=str(path)))
    assert [e[0] for e in events] == ["info", "session"]
    recorded = events[0][1]
    assert recorded["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and recorded["size_bytes"] == path.stat().st_size
    assert (recorded["format"], recorded["opset"], recorded["producer"]) == ("onnx", 17, "auditor-tests 1")
    assert model.info.sha256 == recorded["sha256"]
