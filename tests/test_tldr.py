"""tldr: each loss term against a direct computation, the phase switch, the query-only fallback, the study."""
from __future__ import annotations

import json

import torch
from torch import nn

import auditor_tldr
from auditor_tldr import attack as tldr_attack
from auditor_tldr.losses import per_sample_gradient_norms, perturb, perturbed_losses, pixel_range_term, tv_term, weight_gradient_term


def test_tv_matches_loops():
    x = torch.rand(2, 1, 4, 5)
    total = 0.0
    for b in range(2):
        for h in range(4):
            for w in range(5):
                if h + 1 < 4:
                    total += float(x[b, 0, h + 1, w] - x[b, 0, h, w]) ** 2 / (2 * 3 * 5)
                if w + 1 < 5:
                    total += float(x[b, 0, h, w + 1] - x[b, 0, h, w]) ** 2 / (2 * 4 * 4)
    assert abs(float(tv_term(x)) - total) < 1e-5


def test_pixel_range_penalises_only_outside():
    raw = torch.tensor([[[[-0.5, 0.2], [1.0, 1.25]]]])
    assert abs(float(pixel_range_term(raw)) - (0.5 + 0.25) / 4) < 1e-6
    assert float(pixel_range_term(torch.rand(3, 1, 4, 4))) == 0.0


def test_perturbation_is_pixel_space_sign_noise():
    x = torch.full((2, 1, 8, 8), 0.5)
    y = perturb(x, 0.2, torch.Generator().manual_seed(0))
    torch.testing.assert_close((y - x).abs(), torch.full_like(x, 0.2))


def _tiny_tanh_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()


def test_weight_gradient_term_against_finite_differences():
    net = _tiny_tanh_net()
    x = torch.rand(3, 1, 2, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    for p in net.parameters():
        p.requires_grad_(False)
    term = float(weight_gradient_term(net, x, y))
    eps, squares = 1e-6, 0.0
    for p in net.parameters():
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + eps
            up = float(nn.functional.cross_entropy(net(x), y))
            flat[i] = old - eps
            down = float(nn.functional.cross_entropy(net(x), y))
            flat[i] = old
            squares += ((up - down) / (2 * eps)) ** 2
    assert abs(term - squares ** 0.5) < 1e-6
    assert all(not p.requires_grad for p in net.parameters())  # restored


def test_weight_gradient_term_is_differentiable_in_the_images():
    net = _tiny_tanh_net()
    y = torch.tensor([1, 0])
    x = torch.rand(2, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda im: weight_gradient_term(net, im, y), (x,), eps=1e-6, atol=1e-5)


def test_phases_switch_from_soft_to_hot(monkeypatch, tiny_net):
    from auditor.core.attack import RunContext
    from auditor.lab.testing import make_audit_data
    from auditor.models.model import from_module

    calls = []
    real = tldr_attack.train_generator

    def spy(net, generator, settings, ctx, **kwargs):
        calls.append({"hot": kwargs.get("hot", False), "weights": dict(kwargs.get("weights") or {})})
        return real(net, generator, settings, ctx, **kwargs)

    monkeypatch.setattr(tldr_attack, "train_generator", spy)
    model = from_module(tiny_net, num_classes=3, input_shape=(1, 16, 16))
    attack = tldr_attack.TrainingLikeDataReconstruction(tldr_attack.TldrConfig(inversion_steps=2, reconstruction_steps=2, batch_size=12, width=4))
    output = attack.run(model, make_audit_data(), RunContext(device=torch.device("cpu"), seed=0, smoke=True, show_progress=False))
    assert [c["hot"] for c in calls] == [False, True]
    assert "grad" not in calls[0]["weights"] and calls[1]["weights"]["grad"] == 10.0
    assert set(calls[1]["weights"]) == {"kl", "ce", "cosine", "ortho", "kl_pert", "ce_pert", "tv", "pix", "grad"}
    assert output.reconstructions.shape[1:] == (1, 16, 16) and output.reconstructions.min() >= 0


def test_per_sample_gradient_norms_match_torch_func():
    net = _tiny_tanh_net()
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, xi, yi):
        return nn.functional.cross_entropy(torch.func.functional_call(net, p, (xi[None],)), yi[None])

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    expected = torch.sqrt(sum((g.reshape(5, -1) ** 2).sum(1) for g in grads.values()))
    torch.testing.assert_close(per_sample_gradient_norms(net, x, y), expected)
    with torch.no_grad():  # callers may hold no_grad; the norms need autograd anyway
        torch.testing.assert_close(per_sample_gradient_norms(net, x, y), expected)


def test_perturbed_losses_match_a_direct_computation():
    net = _tiny_tanh_net().float()
    x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
    got = perturbed_losses(net, x, y, 0.1, repeats=3, generator=torch.Generator().manual_seed(3))
    rng = torch.Generator().manual_seed(3)
    direct = torch.stack([nn.functional.cross_entropy(net(perturb(x, 0.1, rng)), y, reduction="none") for _ in range(3)]).mean(0)
    torch.testing.assert_close(got, direct.detach())


def test_candidates_keep_the_lowest_scored_per_class(tiny_net, monkeypatch):
    from auditor.core.attack import RunContext
    from auditor_inversion.engine import build_generator

    attack = tldr_attack.TrainingLikeDataReconstruction(tldr_attack.TldrConfig(width=4, candidates=3))
    torch.manual_seed(0)
    generator = build_generator(3, (1, 16, 16), attack.config, output="clamp").eval()
    pools = []
    real_sample = tldr_attack.sample

    def recording_sample(gen, labels, *args, **kwargs):
        out = real_sample(gen, labels, *args, **kwargs)
        pools.append((out, labels))
        return out

    scores = torch.tensor([7, 3, 11, 0, 5, 9, 14, 2, 8, 1, 17, 6, 4, 13, 10, 16, 12, 15], dtype=torch.float32)  # 3 classes × 2 × 3
    monkeypatch.setattr(tldr_attack, "sample", recording_sample)
    monkeypatch.setattr(attack, "_candidate_scores", lambda *a, **k: scores)
    ctx = RunContext(device=torch.device("cpu"), seed=0, show_progress=False)
    images, labels, note = attack._sample_and_select(tiny_net, generator, 3, 2, True, ctx)
    (pool, pool_labels), = pools
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    for c in range(3):
        idx = [i for i in range(18) if int(pool_labels[i]) == c]
        ranked = sorted(idx, key=lambda i: float(scores[i]))
        torch.testing.assert_close(images[labels == c], pool[ranked[:2]])
        assert max(float(scores[i]) for i in ranked[:2]) <= min(float(scores[i]) for i in ranked[2:])
    assert "best of 3 candidates" in note


def test_one_candidate_means_no_selection(tiny_net):
    from auditor.core.attack import RunContext
    from auditor_inversion.engine import build_generator

    attack = tldr_attack.TrainingLikeDataReconstruction(tldr_attack.TldrConfig(width=4, candidates=1))
    generator = build_generator(3, (1, 16, 16), attack.config, output="clamp").eval()
    images, labels, note = attack._sample_and_select(tiny_net, generator, 3, 4, True,
                                                      RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    assert images.shape == (12, 1, 16, 16) and labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and note == ""


def test_query_only_model_drops_the_weight_gradient_term(run_attack, monkeypatch):
    import onnx2pytorch

    monkeypatch.setattr(onnx2pytorch, "ConvertModel", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unsupported op")))
    result = run_attack(auditor_tldr, "tldr", width=4, batch_size=12, select_by="grad")
    assert result.status == "completed", result.reason
    assert result.gradient_mode == "zeroth_order"
    assert any("weight-gradient term dropped" in n for n in result.notes)
    assert any("ranked by robustness instead of weight-gradient norm" in n for n in result.notes)


def test_smoke_run_end_to_end(run_attack):
    result = run_attack(auditor_tldr, "tldr", width=4, batch_size=12)
    assert result.status == "completed", result.reason
    assert result.scores is not None and result.scores.gap is not None


def test_privacy_study_smoke(tmp_path, capsys):
    from auditor_tldr.study import study_main

    code = study_main(["--dataset", "digits", "--archs", "mlp,cnn", "--sizes", "50", "--epochs", "2", "--reference", "100",
                       "--inversion-seconds", "1", "--reconstruction-seconds", "1", "--out", str(tmp_path)])
    assert code == 0
    study = json.loads((tmp_path / "study.json").read_text())
    assert {r["arch"] for r in study["rows"]} == {"mlp", "cnn"}
    assert all(r["status"] == "completed" for r in study["rows"])
    html = (tmp_path / "study.html").read_text()
    assert "Leakage by architecture" in html and html.count("data:image/png;base64,") >= 3
    assert (tmp_path / "compare.html").exists()
