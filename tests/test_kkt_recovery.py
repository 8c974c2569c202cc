"""kkt recovers the training points of a tiny 2-layer ReLU net trained to convergence (issue 14's recovery test).

The target: x -> V relu(W x), W (40 x 20, no bias) trained, V a fixed read-out (half the units per class), on six
unit-norm points in 20 dimensions whose pairwise inner products are all negative, by full-batch gradient descent
with loss-scaled steps (the regime in which gradient descent converges in direction to a KKT point of the
max-margin problem). Negative inner products keep every point off the kinks: once a point is inactive on a unit,
the other points' gradients push it further below zero. The test first checks, independently of the attack, that
the target is a valid case: the true points explain the weights (non-negative least squares on per-example
gradients computed one at a time), no point sits on a kink, and which points are on the margin. Then it runs the
plugin itself (its soft-to-sharp alpha continuation, ten restarts) and checks, point by point, which margin points
a candidate of the same label lands on, by direction (a bias-free net fixes its inputs only up to scale).
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import nnls
from torch import nn

import auditor_kkt
from auditor import AuditData, RunContext, from_module
from auditor.data.sets import LabeledImages
from auditor_kkt.config import KktConfig

pytestmark = pytest.mark.slow  # about a minute: eight seeds, ten runs each

D, N, H = 20, 6, 40
SEEDS = tuple(range(8))
RESTARTS = 10
NEAR = 0.05          # direction distance that counts as recovered (the points are about 1.4 apart)

class FixedReadout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(D, H, bias=False)
        self.relu = nn.ReLU()  # a module, so that the attack can swap in its surrogate
        v = torch.zeros(2, H)
        v[0, : H // 2] = v[1, H // 2:] = 1 / math.sqrt(H)
        self.register_buffer("v", v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.hidden(x.flatten(1))) @ self.v.T

def points(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Six unit vectors with Gram matrix 1 on the diagonal and negative off the diagonal; labels alternate."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    gram = -(0.2 + 0.8 * torch.rand(N, N, generator=g, dtype=torch.float64)) * 0.8 / (N - 1)
    gram = (gram + gram.T) / 2
    gram.fill_diagonal_(1.0)
    return torch.linalg.cholesky(gram) @ q[:, :N].T, torch.arange(N) % 2

def margins(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out.gather(1, y[:, None])[:, 0] - out.gather(1, (1 - y)[:, None])[:, 0]

def trained(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    x, y = points(seed)
    torch.manual_seed(seed + 1000)
    net = FixedReadout().double()
    with torch.no_grad():
        net.hidden.weight.mul_(1e-4)
    w = net.hidden.weight
    for step in range(6000):
        loss = F.cross_entropy(net(x), y)
        (grad,) = torch.autograd.grad(loss, [w])
        with torch.no_grad():
            w.sub_(min(1.0 / max(float(loss), 1e-300), 1e12) * grad if step else grad)
    with torch.no_grad():  # 1-homogeneous in W: scale the smallest margin to 1
        w.mul_(1.0 / float(margins(net, x, y).min()))
    return net, x, y

def true_points_fit(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The share of ||W||^2 the true points leave unexplained with the best lambda >= 0, and that lambda (non-negative
    least squares on per-example margin gradients, computed one example at a time)."""
    w = net.hidden.weight
    rows = [torch.autograd.grad(margins(net, x[i:i + 1], y[i:i + 1])[0], [w])[0].flatten() for i in range(len(x))]
    lam, rnorm = nnls(torch.stack(rows).T.detach().numpy(), w.detach().flatten().numpy())
    return rnorm ** 2 / float((w.detach() ** 2).sum()), torch.from_numpy(lam)

def attack(net: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int):
    """The plugin on a classifier whose pixels [0, 1] map to the points' space [-1, 1]."""
    model = from_module(copy.deepcopy(net).float(), num_classes=2, input_shape=(1, 1, D), mean=(0.5,), std=(0.5,))
    members = LabeledImages(((x.float() + 1) / 2).view(N, 1, 1, D), y, "tiny")
    cfg = KktConfig(candidates_per_class=N // 2, restarts=RESTARTS, steps=RESTARTS * 1600, seconds=1e5, alpha_schedule=(5, 20, 80, 320),
                    lambda_min=0.0, lr_x=0.1, lr_lambda=0.3, float64="all", output="exact", init_scale=0.2)
    out = auditor_kkt.KktReconstruction(cfg).run(model, AuditData(members, None, 2, ("a", "b")),
                                                 RunContext(device=torch.device("cpu"), seed=seed, show_progress=False))
    return out

@pytest.fixture(scope="module")
def outcomes() -> dict[int, dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same floating-point order, so the same runs, on every machine
    try:
        return {seed: outcome(seed) for seed in SEEDS}
    finally:
        torch.set_num_threads(threads)

def outcome(seed: int) -> dict:
    net, x, y = trained(seed)
    residual, lam = true_points_fit(net, x, y)
    z = x @ net.hidden.weight.detach().T
    kink = float((z.abs() / net.hidden.weight.detach().norm(dim=1)[None]).min())
    on_margin = [i for i in range(N) if lam[i] > 0.05 * lam.max()]  # support points: the ones theta is made of
    out = attack(net, x, y, seed)
    cand = out.reconstructions.view(len(out.reconstructions), D).double() * 2 - 1
    direction = cand / cand.norm(dim=1, keepdim=True).clamp_min(1e-12)
    dist = torch.cdist(x, direction)
    dist[y[:, None] != out.labels[None, :]] = math.inf
    nearest = dist.min(1).values
    return {"residual": residual, "kink": kink, "margins": margins(net, x, y).tolist(), "on_margin": on_margin,
            "nearest": nearest.tolist(), "recovered": [i for i in on_margin if nearest[i] < NEAR], "relu_residual": out.metrics["relu_residual"]}

def test_each_target_is_a_valid_stationary_case(outcomes) -> None:
    for seed, o in outcomes.items():
        assert o["residual"] < 1e-5, f"seed {seed}: the true points leave {o['residual']:.1e} of ||W||^2 unexplained"
        assert o["kink"] > 0.01, f"seed {seed}: a point sits {o['kink']:.3g} from a kink"
        assert len(o["on_margin"]) >= 2 and max(o["margins"][i] for i in o["on_margin"]) < 1.05, f"seed {seed}: {o}"

def test_margin_points_are_recovered(outcomes) -> None:
    """Which margin points each seed recovered; all of them on at least 3 of the 8 seeds, and where all were recovered
    the attack's own true-ReLU residual is at the true points' level.

    Measured here: all six on seeds 0, 1, 2 and 6 (in runs that land, every point to within 0.003), 0/2/3 of six on
    seeds 3/4/5, 4 on seed 7. The bar is 3, not 4: another processor's rounding takes the runs elsewhere, and on
    seeds 0, 1, 2 and 6 about half of all runs land (a scratch study with other starting points), so losing two of
    those four seeds at once is very unlikely while a fixed alpha completes none."""
    summary = {s: f"{o['recovered']} of {o['on_margin']} (relu residual {o['relu_residual']:.1e})" for s, o in outcomes.items()}
    complete = [s for s, o in outcomes.items() if o["recovered"] == o["on_margin"]]
    assert len(complete) >= 3, f"every margin point recovered only on seeds {complete}: {summary}"
    for s in complete:
        o = outcomes[s]
        assert max(o["nearest"][i] for i in o["on_margin"]) < NEAR
        assert o["relu_residual"] < 10 * max(o["residual"], 1e-7), f"seed {s}: {summary[s]}, true points {o['residual']:.1e}"
