"""kkt: the stationarity residual against per-example gradients summed by hand, the ReLU surrogate, and runs."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import auditor_kkt
from auditor_kkt.config import KktConfig
from auditor_kkt.engine import Target, explained_shares
from auditor_kkt.stationarity import residual, weighted_gradient
from auditor_kkt.surrogate import SurrogateReLU, with_surrogate


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False)).double()


def by_hand(net: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, form: str) -> list[torch.Tensor]:
    """(1/m) sum_i grad_theta f_i, one example at a time, with the output f_i written out directly."""
    params = list(net.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(x)):
        out = net(x[i:i + 1])[0]
        yi = int(y[i])
        if form == "loss":
            f = -lam[i] * (torch.logsumexp(out, 0) - out[yi])
        elif lam.dim() == 2:
            f = sum(lam[i, j] * (out[yi] - out[j]) for j in range(out.numel()) if j != yi)
        else:
            f = lam[i] * (out[yi] - max(out[j] for j in range(out.numel()) if j != yi))
        for t, g in zip(total, torch.autograd.grad(f, params)):
            t += g / len(x)
    return total


@pytest.mark.parametrize("form,per_class", [("margin", False), ("margin", True), ("loss", False)])
def test_residual_matches_per_example_sum(form: str, per_class: bool) -> None:
    net = tiny_net()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    lam = torch.rand((7, 3) if per_class else (7,), generator=g, dtype=torch.float64) + 0.1
    params = list(net.parameters())
    got = weighted_gradient(net, params, x, y, lam, form, create_graph=False)
    want = by_hand(net, x, y, lam, form)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    res = residual(params, got)
    direct = [float(((p.detach() - w) ** 2).sum()) for p, w in zip(params, want)]
    torch.testing.assert_close(res.per_layer, torch.tensor(direct, dtype=torch.float64), rtol=1e-10, atol=1e-12)
    norms = sum(float((p ** 2).sum()) for p in params)
    assert res.normalised == pytest.approx(sum(direct) / norms, rel=1e-10)


def test_surrogate_is_relu_forward_and_sigmoid_backward() -> None:
    z = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    act = SurrogateReLU(alpha=7.0)
    out = act(z)
    torch.testing.assert_close(out, torch.clamp(z, min=0))
    (grad,) = torch.autograd.grad(out.sum(), z, create_graph=True)
    torch.testing.assert_close(grad, 1 / (1 + torch.exp(-7.0 * z)))
    (second,) = torch.autograd.grad(grad.sum(), z)  # double backward: the derivative of the sigmoid
    s = 1 / (1 + torch.exp(-7.0 * z.detach()))
    torch.testing.assert_close(second, 7.0 * s * (1 - s))


def test_swap_counts_modules_and_notes_functional_relu() -> None:
    twin, count, notes = with_surrogate(tiny_net(), 20.0)
    assert count == 2 and not notes
    assert sum(isinstance(m, SurrogateReLU) for m in twin.modules()) == 2

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(F.relu(self.a(x)))

    _, count, notes = with_surrogate(Functional(), 20.0)
    assert count == 0 and notes and "functional relu" in notes[0]


def test_explained_shares_add_up_to_the_projection() -> None:
    net = tiny_net(3)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    lam = torch.rand(5, generator=g, dtype=torch.float64) + 0.2
    target = Target.build(net, -torch.ones(6), torch.ones(6), 3, torch.device("cpu"))
    shares = explained_shares(target, x, y, lam, "margin", net)
    params = list(net.parameters())
    for i in range(5):  # each share: that candidate's own gradient projected on theta, layer-normalised
        own = by_hand(net, x[i:i + 1], y[i:i + 1], lam[i:i + 1], "margin")
        want = sum(float((p * o).sum() / (p ** 2).sum()) for p, o in zip(params, own)) / len(params) / 5
        assert float(shares[i]) == pytest.approx(want, rel=1e-8)


def test_smoke_run_on_onnx(run_attack) -> None:
    result = run_attack(auditor_kkt, "kkt", seconds=5.0)
    assert result.status == "completed", result.reason
    assert result.metrics["candidates"] > 0 and result.metrics["steps"] >= 1
    assert any("candidates converged" in n for n in result.notes)


def test_torch_model_directly(audit_data) -> None:
    from auditor.core.attack import RunContext
    from auditor.lab.testing import IMAGE_SHAPE, NUM_CLASSES, train_tiny
    from auditor.models.model import from_module

    model = from_module(train_tiny(audit_data, steps=5), num_classes=NUM_CLASSES, input_shape=IMAGE_SHAPE, mean=(0.5,), std=(0.25,))
    attack = auditor_kkt.KktReconstruction(KktConfig(seconds=3.0, steps=20, candidates_per_class=2, min_share=-1e9, output="exact"))
    out = attack.run(model, audit_data, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    assert out.reconstructions is not None and out.reconstructions.shape[1:] == IMAGE_SHAPE
    assert float(out.reconstructions.min()) >= 0 and float(out.reconstructions.max()) <= 1
    assert out.metrics["relu_swapped"] == 3


def test_runs_that_reach_restart_steps_early_are_followed_by_more(audit_data) -> None:
    """A fast model: runs stop at restart_steps long before the budget, so the attack starts further runs; each run's
    candidates are kept, and the note says how many runs were added."""
    from auditor.core.attack import RunContext
    from auditor.lab.testing import IMAGE_SHAPE, NUM_CLASSES, train_tiny
    from auditor.models.model import from_module

    model = from_module(train_tiny(audit_data, steps=5), num_classes=NUM_CLASSES, input_shape=IMAGE_SHAPE, mean=(0.5,), std=(0.25,))
    cfg = KktConfig(seconds=3.0, restart_steps=10, candidates_per_class=2, min_share=-1e9)
    out = auditor_kkt.KktReconstruction(cfg).run(model, audit_data, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    runs = int(out.metrics["restarts"])
    assert 2 <= runs <= 20 and out.metrics["candidates"] == runs * 2 * NUM_CLASSES
    assert out.metrics["steps"] <= runs * 10 + runs  # at most restart_steps per run (plus a recovery step each)
    assert any(n.startswith(f"{runs} runs: 1 planned") for n in out.notes)


def test_shares_and_swap_on_module_names_with_dots_and_slashes() -> None:
    """onnx2pytorch registers children with setattr under names such as 'Gemm_/net/net.1/Gemm' (regression)."""
    ref = tiny_net(5)
    odd = nn.Sequential()
    for name, child in zip(["Gemm_/net/net.0/Gemm", "Relu_/net/net.1/Relu", "MatMul_/net.2", "Relu_/net.3", "MatMul_/net.4"], ref):
        setattr(odd, name, copy.deepcopy(child))
    twin, count, _ = with_surrogate(odd, 20.0)
    assert count == 2
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    lam = torch.rand(4, generator=g, dtype=torch.float64) + 0.2
    target = Target.build(twin, -torch.ones(6), torch.ones(6), 3, torch.device("cpu"))
    shares = explained_shares(target, x, y, lam, "margin", odd)
    params = list(ref.parameters())
    for i in range(4):
        own = by_hand(ref, x[i:i + 1], y[i:i + 1], lam[i:i + 1], "margin")
        want = sum(float((p * o).sum() / (p ** 2).sum()) for p, o in zip(params, own)) / len(params) / 4
        assert float(shares[i]) == pytest.approx(want, rel=1e-8)


def test_exact_slope_surrogate_keeps_the_step_and_smooths_its_derivative() -> None:
    z = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    act = SurrogateReLU(alpha=7.0, slope="exact")
    out = act(z)
    torch.testing.assert_close(out, torch.clamp(z, min=0))
    (grad,) = torch.autograd.grad(out.sum(), z, create_graph=True)
    torch.testing.assert_close(grad, (z.detach() > 0).double())
    (second,) = torch.autograd.grad(grad.sum(), z)
    s = 1 / (1 + torch.exp(-7.0 * z.detach()))
    torch.testing.assert_close(second, 7.0 * s * (1 - s))


def test_divergence_guard_restores_finite_candidates(audit_data) -> None:
    from auditor import RunContext, from_module
    from auditor.testing import IMAGE_SHAPE, NUM_CLASSES, train_tiny

    model = from_module(train_tiny(audit_data, steps=5), num_classes=NUM_CLASSES, input_shape=IMAGE_SHAPE, mean=(0.5,), std=(0.25,))
    cfg = KktConfig(seconds=20.0, steps=40, candidates_per_class=2, form="loss", weight_decay=1e-3, lr_x=1e8, lr_lambda=1e4,
                    schedule="constant", output="exact")
    out = auditor_kkt.KktReconstruction(cfg).run(model, audit_data, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    assert out.metrics["diverged"] >= 1
    assert out.reconstructions is not None and bool(torch.isfinite(out.reconstructions).all())
    assert any("diverged" in n for n in out.notes)


def test_divergence_guard_also_catches_a_finite_blow_up() -> None:
    """A residual that explodes but stays finite (coefficients of 1e8) is treated as divergence: state restored, rates halved."""
    from auditor_kkt.engine import DIVERGED_RESIDUAL, new_candidates, step

    net = tiny_net()
    target = Target.build(net, torch.full((6,), -3.0), torch.full((6,), 3.0), 3, torch.device("cpu"))
    cfg = KktConfig(lambda_per_class=False)
    c = new_candidates("margin", torch.tensor([0, 1, 2]), (6,), 3, cfg, seed=0, lam_scale=1.0, device=torch.device("cpu"))
    with torch.no_grad():
        c.x.normal_()
        c.coef.fill_(1e8)
    c.safe = (c.x.detach().clone(), torch.full_like(c.coef, 0.5))
    params = target.params(torch.float64)
    lam = c.lam().detach()
    blown = residual(params, weighted_gradient(target.nets[torch.float64], params, c.x.detach(), c.y, lam, "margin", create_graph=False))
    assert math.isfinite(blown.normalised) and blown.normalised > DIVERGED_RESIDUAL  # the case under test, computed directly
    c.steps = 1  # not a step at which the guard saves the current state
    step(c, target, cfg, torch.float64, 1.0, record=False)
    assert c.diverged == 1 and c.lr_scale == 0.5
    torch.testing.assert_close(c.coef.detach(), torch.full_like(c.coef, 0.5))
    torch.testing.assert_close(c.x.detach(), c.safe[0])


def test_restarts_default_to_one_run_per_restart_seconds() -> None:
    """restarts=None splits the budget into runs of about restart_seconds (at least one, at most 20); a number is kept."""
    from auditor_kkt.config import KktConfig

    assert [KktConfig().runs(s) for s in (30, 149, 150, 1200, 1500, 10**6)] == [1, 1, 1, 8, 10, 20]
    assert KktConfig(restarts=2).runs(1200) == 2 and KktConfig(restart_seconds=100).runs(1200) == 12


def test_fast_runs_that_stop_at_restart_steps_leave_time_for_more_runs() -> None:
    """The run plan by hand: planned runs share the time left equally; restarts=None caps each at restart_steps, and more
    runs follow while the time left affords half a run at the measured speed; an explicit restarts is exact."""
    from auditor_kkt.config import KktConfig

    cfg = KktConfig(restart_steps=5000)
    assert cfg.next_run(0, 1, 180.0, 50_000, None) == (180.0, 5000)        # one planned run, capped at 5,000 steps
    assert cfg.next_run(1, 1, 145.0, 45_000, 143.0) == (145.0, 5000)       # a GPU at 143 steps/s: 35 s used, a second run
    assert cfg.next_run(5, 1, 17.0, 25_000, 143.0) is None                 # 17 s x 143/s < 2,500 steps: stop
    assert cfg.next_run(1, 1, 100.0, 50_000, 18.0) is None                 # a CPU at 18/s: 1,800 steps left in it, too few
    assert cfg.next_run(3, 8, 750.0, 40_000, 30.0) == (150.0, 5000)        # 8 planned runs of 150 s each: the time plan stands
    assert cfg.next_run(2, 8, 0.0, 40_000, 30.0) is None                   # the budget is spent
    assert cfg.next_run(0, 1, 120.0, 0, None) is None                      # the step cap is spent
    exact = KktConfig(restarts=3)
    assert exact.next_run(0, 3, 90.0, 9000, None) == (30.0, 3000)          # no restart_steps cap on an explicit count
    assert exact.next_run(3, 3, 60.0, 6000, 1000.0) is None                # and no extra runs
