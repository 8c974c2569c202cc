"""The inversion plugin: loss terms against direct computations, conditioning, layer finder, smoke runs."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import auditor_inversion
from auditor.core.attack import RunContext
from auditor.models.model import from_module
from auditor_inversion.conditioning import class_matrices, soft_vectors
from auditor_inversion.engine import InversionSettings, build_generator, sample, train_generator
from auditor_inversion.features import find_feature_layer, tap_features
from auditor_inversion.generator import ConditionedGenerator
from auditor_inversion.losses import ce_term, cosine_term, kl_term, ortho_term


def test_kl_matches_direct_sum():
    logits = torch.randn(5, 4)
    p = torch.softmax(torch.randn(5, 4), 1)
    q = torch.softmax(logits, 1)
    direct = (p * (p.log() - q.log())).sum(1).mean()
    torch.testing.assert_close(kl_term(logits, p), direct)


def test_ce_matches_direct():
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    direct = -torch.log_softmax(logits, 1)[torch.arange(6), labels].mean()
    torch.testing.assert_close(ce_term(logits, labels), direct)


def test_cosine_and_ortho_match_loops():
    f = torch.randn(5, 7)
    labels = torch.tensor([0, 0, 1, 1, 1])
    def cos(a, b):
        return float(torch.dot(a, b) / (a.norm() * b.norm()))
    pairs = [(i, j) for i, j in itertools.permutations(range(5), 2)]
    assert math.isclose(float(cosine_term(f)), sum(cos(f[i], f[j]) for i, j in pairs) / len(pairs), rel_tol=1e-5)
    same = [(i, j) for i, j in pairs if labels[i] == labels[j]]
    assert math.isclose(float(cosine_term(f, labels)), sum(cos(f[i], f[j]) for i, j in same) / len(same), rel_tol=1e-5)
    gram = sum((cos(f[i], f[j]) - (1.0 if i == j else 0.0)) ** 2 for i in range(5) for j in range(5)) / 25
    assert math.isclose(float(ortho_term(f)), gram, rel_tol=1e-4, abs_tol=1e-6)


def test_soft_vectors_have_label_argmax():
    labels = torch.randint(0, 7, (200,), generator=torch.Generator().manual_seed(0))
    p = soft_vectors(labels, 7, torch.Generator().manual_seed(1))
    assert torch.equal(p.argmax(1), labels)
    torch.testing.assert_close(p.sum(1), torch.ones(200))


@pytest.mark.parametrize(("num_classes", "side"), [(3, 4), (10, 7), (10, 10), (100, 8)])
def test_class_matrices_are_distinct(num_classes, side):
    m = class_matrices(torch.arange(num_classes), num_classes, side)
    assert m.shape == (num_classes, 1, side, side)
    flat = m.flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == num_classes


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 16, 16), (3, 64, 64), (1, 30, 30)])
@pytest.mark.parametrize("conditioning", ["label", "vector", "matrix", "vector_matrix"])
def test_generator_shapes(shape, conditioning):
    g = ConditionedGenerator(10, shape, conditioning=conditioning, width=4, latent_dim=8)
    labels = torch.arange(4)
    x = g(torch.randn(4, 8), F.one_hot(labels, 10).float(), labels)
    assert x.shape == (4, *shape) and x.min() >= 0 and x.max() <= 1


def test_feature_layer_finder_torch_timm_and_onnx(tiny_net, tiny_onnx_path):
    import timm

    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    name, layer = find_feature_layer(tiny_net)
    assert name == "head.2" and layer.in_features == 32
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5, img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    assert find_feature_layer(vit)[0] == "head"
    converted = load_model(ModelSpec(source=str(tiny_onnx_path))).module()
    with tap_features(converted) as tap:
        converted(torch.rand(2, 1, 16, 16))
        assert tap.value.shape == (2, 32)
    with tap_features(tiny_net) as tap:
        tiny_net(torch.rand(2, 1, 16, 16))
        direct = tiny_net.head[1](tiny_net.head[0](tiny_net.features(torch.rand(2, 1, 16, 16))))
        assert tap.value.shape == direct.shape
    assert find_feature_layer(nn.Sequential(nn.ReLU())) is None
    with pytest.raises(ValueError, match="no layer named"):
        find_feature_layer(tiny_net, "nope")


def test_inversion_learns_the_tiny_model(tiny_net):
    model = from_module(tiny_net, num_classes=3, input_shape=(1, 16, 16))
    settings = InversionSettings(width=8, latent_dim=16, batch_size=48, steps=150, train_seconds=60, lr=3e-3)
    torch.manual_seed(0)
    g = build_generator(3, (1, 16, 16), settings)
    log = train_generator(model.module(), g, settings, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    assert log.steps > 20
    labels = torch.arange(3).repeat_interleave(16)
    x = sample(g, labels, settings, seed=1)
    hits = (model.logits(x).argmax(1) == labels).float().mean()
    assert hits >= 0.9, f"hit rate {hits:.2f}"


def test_smoke_run_end_to_end(run_attack):
    result = run_attack(auditor_inversion, "inversion")
    assert result.status == "completed", result.reason
    assert result.metrics["hit_rate_mean"] >= 0
    assert result.scores is not None and result.scores.samples
    assert any(f.title == "Generated samples per class" for f in result.figures)


def test_zeroth_order_fallback_runs(run_attack, monkeypatch):
    import onnx2pytorch

    monkeypatch.setattr(onnx2pytorch, "ConvertModel", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unsupported op")))
    result = run_attack(auditor_inversion, "inversion")
    assert result.status == "completed" and result.gradient_mode == "zeroth_order"
    assert result.metrics["zeroth_order_queries"] > 0
    assert any("zeroth-order" in n for n in result.notes)
