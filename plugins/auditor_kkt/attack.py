"""The ``kkt`` attack: reconstruct training images from the stationarity conditions of the trained weights."""
from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from auditor import (
    Attack,
    AttackOutput,
    AuditData,
    Capability,
    CapabilityError,
    Classifier,
    LogProbabilities,
    Metric,
    Preprocess,
    RunContext,
    Table,
)
from auditor_kkt.config import KktConfig
from auditor_kkt.engine import (
    Candidates,
    Target,
    explained_shares,
    new_candidates,
    optimise,
    relu_residual,
    run_stages,
)
from auditor_kkt.surrogate import with_surrogate

RESERVE_S = 5.0  # left of the attack's deadline for the per-candidate analysis and the hand-over


def input_box(pre: Preprocess, shape: tuple[int, int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds, in the network's input space, of pixels in [0, 1] (one image, no batch axis)."""
    with torch.no_grad():
        a = pre(torch.zeros((1, *shape), device=device))[0]
        b = pre(torch.ones((1, *shape), device=device))[0]
    return torch.minimum(a, b), torch.maximum(a, b)


def to_pixels(x: torch.Tensor, pre: Preprocess, how: str) -> torch.Tensor:
    """Network-input tensors back to pixels [N, C, H, W] in [0, 1]: undo layout, mean/std and input range."""
    x = x.detach().to(pre.mean.device, torch.float32)
    if pre.channels_last:
        x = x.permute(0, 3, 1, 2)
    pix = ((x * pre.std + pre.mean) - pre.lo) / pre.scale
    if how == "stretch":
        flat = pix.flatten(1)
        lo, hi = flat.min(1).values, flat.max(1).values
        pix = ((flat - lo[:, None]) / (hi - lo).clamp_min(1e-8)[:, None]).view_as(pix)
    return pix.clamp(0, 1).cpu()


def _speed(runs: list[Candidates], start: float) -> float | None:
    """Steps per second of the runs so far (None before the first)."""
    elapsed = time.monotonic() - start
    return sum(c.steps for c in runs) / elapsed if runs and elapsed > 0 else None


class KktReconstruction(Attack):
    name = "kkt"
    summary = "KKT reconstruction (Haim et al. 2022, Buzaglo et al. 2023): training images as the points whose gradients add up to the weights."
    requires = frozenset({Capability.QUERY, Capability.GRADIENTS, Capability.PARAMETERS})
    zeroth_order = False
    Config = KktConfig
    metrics = (
        Metric(name="converged", label="KKT candidates converged", higher_is_better=None, format="d"),
        Metric(name="normalised_residual", label="KKT residual (normalised)", higher_is_better=True, format=".3g",
               description="Stationarity residual of the best fit; lower means the candidates explain the weights better."),
        Metric(name="relu_residual", label="KKT residual, true ReLU (best run)", higher_is_better=True, format=".3g",
               description="The same residual with the network's own ReLU instead of the smoothed derivative; the surrogate's can "
               "be far lower when candidates sit where the surrogate is soft."),
        Metric(name="candidates", higher_is_better=None, format="d", compare=False),
        Metric(name="restarts", higher_is_better=None, format="d", compare=False),
        Metric(name="relu_swapped", higher_is_better=None, format="d", compare=False),
        Metric(name="steps", higher_is_better=None, format="d", compare=False),
        Metric(name="seconds", higher_is_better=None, format=".1f", compare=False),
        Metric(name="steps_per_s", higher_is_better=None, format=".1f", compare=False),
    )

    @classmethod
    def demo_options(cls, budget_s: float) -> dict[str, float]:
        return {"seconds": budget_s}

    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        cfg: KktConfig = self.config  # type: ignore[assignment]
        torch.manual_seed(ctx.seed)
        net = model.network()
        if net is None or not any(True for _ in net.parameters()):
            raise CapabilityError("kkt needs the network's parameters as a torch module; this model exposes none")
        if model.info.outputs_probabilities:
            net = nn.Sequential(net, LogProbabilities())
        notes: list[str] = []
        box = input_box(model.preprocess, model.input_shape, ctx.device)
        alphas = cfg.alpha_schedule or (cfg.alpha,)
        stages = []
        for a in alphas:
            surrogate, swapped, surrogate_notes = with_surrogate(net, a, cfg.relu_slope)
            stages.append(Target.build(surrogate, *box, model.num_classes, ctx.device))
        notes += surrogate_notes
        if cfg.alpha_schedule:
            notes.append(f"alpha continuation: {', '.join(f'{a:g}' for a in alphas)} (an equal share of each run at each)")
        target = stages[0]
        plain = copy.deepcopy(net).to(device=ctx.device, dtype=torch.float64).eval().requires_grad_(True)
        shape = tuple(target.lo.shape)
        per_class = data.members.labels.bincount(minlength=model.num_classes).float().mean().item()
        k = cfg.candidates_per_class or max(1, min(2 * math.ceil(per_class), 50))
        k = min(k, 2) if ctx.smoke else k
        y = torch.arange(model.num_classes).repeat_interleave(k)
        left = ctx.time_left()
        seconds = cfg.seconds if left is None else max(1.0, min(cfg.seconds, left - RESERVE_S))
        steps = 3 if ctx.smoke else cfg.steps
        lam_scale = 1.0 / (len(data.members.labels) * cfg.weight_decay) if cfg.weight_decay else 1.0
        start = time.monotonic()
        runs: list[Candidates] = []
        form = cfg.form
        probe: dict[str, float] = {}
        planned = cfg.runs(seconds)
        while (allowance := cfg.next_run(len(runs), planned, seconds - (time.monotonic() - start), steps - sum(c.steps for c in runs),
                                         _speed(runs, start))) is not None:
            run_seconds, run_steps = allowance
            r = len(runs)
            seed = ctx.seed * 7919 + r
            if form == "auto":
                trials = {f: new_candidates(f, y, shape, model.num_classes, cfg, seed, lam_scale, ctx.device) for f in ("margin", "loss")}
                for f, c in trials.items():
                    optimise(c, target, cfg, run_seconds * cfg.auto_probe, max(1, int(run_steps * cfg.auto_probe)), ctx.check_deadline,
                             lr_to=cfg.auto_probe)
                    probe[f] = c.last_residual
                form = min(probe, key=probe.get)  # type: ignore[arg-type]
                notes.append(f"auto: normalised residual after the probe: margin {probe['margin']:.4f}, loss {probe['loss']:.4f}; "
                             f"kept {form}")
                c = trials[form]
                used = 2 * cfg.auto_probe
                run_stages(c, stages, cfg, run_seconds * (1 - used), max(1, int(run_steps * (1 - used))), ctx.check_deadline,
                           lr_from=cfg.auto_probe)
            else:
                c = new_candidates(form, y, shape, model.num_classes, cfg, seed, lam_scale, ctx.device)
                run_stages(c, stages, cfg, run_seconds, run_steps, ctx.check_deadline)
            runs.append(c)
        if len(runs) > planned:
            notes.append(f"{len(runs)} runs: {planned} planned for the time budget, {len(runs) - planned} more in the time the planned "
                         f"runs left when they stopped at restart_steps ({cfg.restart_steps:,})")
        elapsed = time.monotonic() - start
        return self._hand_over(runs, model, target, plain, cfg, notes, elapsed, swapped, probe)

    def _hand_over(self, runs: list[Candidates], model: Classifier, target: Target, plain: nn.Module, cfg: KktConfig,
                   notes: list[str], elapsed: float, swapped: int, probe: dict[str, float]) -> AttackOutput:
        rows, keep_x, keep_y, keep_share, real = [], [], [], [], []
        m_total = 0
        for r, c in enumerate(runs):
            x = c.x.detach()
            lam = c.lam().detach()
            real.append(relu_residual(plain, x, c.y, lam, c.form))
            share = explained_shares(target, x, c.y, lam, c.form, plain) * len(x)  # 1 = the average candidate
            with torch.no_grad():
                pred = plain(x).argmax(1)
            lam_total = lam.sum(1) - lam.gather(1, c.y[:, None])[:, 0] if lam.dim() == 2 else lam
            ok = (share >= cfg.min_share) & (pred == c.y) if cfg.min_share >= 0 else torch.ones_like(pred, dtype=torch.bool)
            m_total += len(x)
            for i in range(len(x)):
                rows.append([r, i, int(c.y[i]), round(float(lam_total[i]), 4), round(float(share[i]), 4), int(pred[i]), bool(ok[i])])
            keep_x.append(x[ok])
            keep_y.append(c.y[ok])
            keep_share.append(share[ok])
        xs, ys, shares = torch.cat(keep_x), torch.cat(keep_y).cpu(), torch.cat(keep_share).cpu()
        order = shares.argsort(descending=True)[: cfg.max_output] if cfg.max_output else shares.argsort(descending=True)
        xs, ys = xs[order.to(xs.device)], ys[order]
        last = runs[-1]
        steps = sum(c.steps for c in runs)
        metrics = {"steps": float(steps), "seconds": round(elapsed, 2), "steps_per_s": round(steps / max(elapsed, 1e-9), 2),
                   "candidates": float(m_total), "converged": float(len(xs)), "restarts": float(len(runs)),
                   "relu_swapped": float(swapped), "normalised_residual": last.last_residual,
                   "relu_residual": min(real), "relu_residual_last": real[-1],
                   **{f"residual_{k}": v for k, v in (last.history[-1].items() if last.history else []) if k.startswith("layer")},
                   **{f"probe_residual_{k}": v for k, v in probe.items()}}
        diverged = sum(c.diverged for c in runs)
        if diverged:
            notes.append(f"the residual diverged {diverged} time(s): each time the last finite candidates were restored and the "
                         f"learning rates halved (final factor {min(c.lr_scale for c in runs):g})")
        metrics["diverged"] = float(diverged)
        notes.append(f"{len(xs)} of {m_total} candidates converged (explained share >= {cfg.min_share} of the average candidate's, "
                     f"and the model gives them their label); form {last.form}; {steps} steps in {elapsed:.0f} s")
        table = Table(title="Candidates: coefficient and share of the weights explained (1 = average candidate)",
                      columns=["restart", "candidate", "label", "lambda", "share", "predicted", "converged"], rows=rows,
                      caption="share = m * sum_l <theta_l, G_il> / ||theta_l||^2 / L, G_il the candidate's own gradient term.")
        history = Table(title="Residual during the last run (every 50 steps; layer columns: ||theta_l - G_l||^2 / ||theta_l||^2)",
                        columns=list(last.history[0].keys()) if last.history else [],
                        rows=[[round(v, 5) for v in h.values()] for h in last.history[-12:]])
        if not len(xs):
            notes.append("no candidate converged: nothing was handed to scoring. A negative result means this model's weights "
                         "did not reveal training points to this attack at this budget, not that they cannot leak.")
            return AttackOutput(metrics=metrics, tables=[table, history], notes=notes, score=False)
        images = to_pixels(xs, model.preprocess, cfg.output)
        from auditor_inversion.engine import class_grid_figure

        figure = class_grid_figure("Converged candidates per class (best share first)", images, ys, model.num_classes)
        return AttackOutput(reconstructions=images, labels=ys, metrics=metrics, tables=[table, history], figures=[figure], notes=notes)

