"""Optional reference models for offline RMIA: trained by the plugin on the calibration non-members.

Off by default (``reference_models = 0``). When the user names a factory (``module:function`` called as
``function(image_shape, num_classes)`` and returning an untrained ``torch.nn.Module``, or ``clone``: the
target's own architecture re-initialised), the plugin trains
``reference_models`` copies, in pairs on complementary random halves of the calibration set (at most
``reference_train_size`` images each, to match the target's training-set size), with the
target model's own preprocessing in front. None of them sees a member or a held-out non-member; each
calibration (population) example is IN for at most one model of each pair. Every scored example uses one OUT
model per pair (:func:`matched_out_mask`), so that calibration and held-out non-members are scored alike. Training stops at ``reference_time_budget_s`` or the attack's deadline, whichever comes first.
"""
from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from auditor import Classifier, RunContext, UsageError
from auditor.lab import zoo

log = logging.getLogger(__name__)


def tinycnn(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A ready recipe (``reference_factory = "auditor_membership.reference:tinycnn"``): the zoo's two-block CNN."""
    return zoo.build("tinycnn", image_shape, num_classes)


def cnn(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A ready recipe (``"auditor_membership.reference:cnn"``): the zoo's three-block CNN (the project's own MNIST models)."""
    return zoo.build("cnn", image_shape, num_classes)


CLONE = "clone"


def clone_factory(target: Classifier) -> Callable[..., nn.Module]:
    """``reference_factory = "clone"``: the target's own architecture, every parameter re-initialised.

    Works for torch models and converted ONNX graphs whose parameters all belong to modules with a
    ``reset_parameters`` method (Linear, Conv, BatchNorm, LayerNorm, ...). A parameter that cannot be
    re-initialised would carry the target's trained weights, i.e. its members, into the reference models,
    so it is an error, not a silent copy.
    """
    net = target.network()
    if net is None:
        raise UsageError("reference_factory 'clone' needs the target as a torch module (torch models or converted ONNX graphs); "
                         "this model exposes none: name a module:function recipe instead")
    owners = [m for m in net.modules() if any(True for _ in m.parameters(recurse=False))]
    stuck = sorted({type(m).__name__ for m in owners if not callable(getattr(m, "reset_parameters", None))})
    if stuck:
        raise UsageError(f"reference_factory 'clone': parameters of {', '.join(stuck)} cannot be re-initialised (no "
                         "reset_parameters), so a clone would keep the target's trained weights; name a module:function recipe")
    from auditor import LogProbabilities

    def build(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        import copy

        twin = copy.deepcopy(net).float().train()
        for m in twin.modules():
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()
        for p in twin.parameters():
            p.requires_grad_(True)
        return nn.Sequential(twin, LogProbabilities()) if target.info.outputs_probabilities else twin

    return build


def resolve_factory(target: str, model: Classifier | None = None) -> Callable[..., nn.Module]:
    """``module:function`` -> the function (importing the module runs the user's code); ``clone`` -> :func:`clone_factory`."""
    if target == CLONE:
        if model is None:
            raise UsageError("reference_factory 'clone' needs the target model")
        return clone_factory(model)
    module_name, sep, function = target.rpartition(":")
    if not sep or not module_name or not function.isidentifier():
        raise UsageError(f"reference_factory must be module:function, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"reference_factory module {module_name!r} could not be imported: {exc}") from exc
    fn = getattr(module, function, None)
    if not callable(fn):
        raise UsageError(f"reference_factory {target!r}: {module_name} has no callable {function!r}")
    return fn


@torch.no_grad()
def mean_loss(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Mean cross-entropy of ``net`` (eval mode) on ``images``."""
    net.eval()
    total = sum(float(nn.functional.cross_entropy(net(images[i:i + batch_size]).double(), labels[i:i + batch_size], reduction="sum"))
                for i in range(0, len(images), batch_size))
    return total / max(len(images), 1)


def fit(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int, lr: float, batch_size: int, seed: int,
        deadline: float, target_loss: float | None = None, weight_decay: float = 0.0) -> dict[str, float]:
    """Adam on cross-entropy for at most ``epochs`` epochs, until ``deadline`` (monotonic clock; at least one epoch), and, with ``target_loss``,
    until the mean loss on the model's own training images is at most ``target_loss`` (checked after every epoch)."""
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    rng = torch.Generator().manual_seed(seed)
    epoch, loss = 0, float("inf")
    while epoch < epochs and (epoch == 0 or time.monotonic() < deadline):  # at least one epoch: pairs stay complete
        net.train()
        order = torch.randperm(len(labels), generator=rng)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2:
                continue
            batch_loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
            optimiser.zero_grad()
            batch_loss.backward()
            optimiser.step()
        epoch += 1
        if target_loss is not None:
            loss = mean_loss(net, images, labels)
            if loss <= target_loss:
                break
    net.eval()
    return {"epochs": float(epoch), "train_loss": loss if target_loss is not None else mean_loss(net, images, labels)}


def train_reference_models(target: Classifier, factory: Callable[..., nn.Module], images: torch.Tensor, labels: torch.Tensor,
                           count: int, *, epochs: int, lr: float, batch_size: int, budget_s: float, ctx: RunContext,
                           train_size: int | None = None, target_loss: float | None = None,
                           weight_decay: float = 0.0, whole_halves: bool = False) -> tuple[list[nn.Module], np.ndarray, list[dict[str, float]]]:
    """Trained models (complete pairs only; fewer than ``count`` when the budget ran out), ``in_mask``
    [len(images), len(models)] (True where model k trained on image i) and each model's training facts (epochs, final
    mean training loss). Each model trains for at most ``epochs`` epochs, stops once its mean training loss reaches
    ``target_loss`` (when given: the target's own loss on its members, so that the reference models fit their data as
    tightly as the target fits its own), and stops after a whole epoch when the budget is spent. ``whole_halves``: each
    model of a pair trains on its whole half (an odd count gives the second one image more), so that every image is IN
    for exactly one model of each pair (online LiRA); ``train_size`` must then be None."""
    if whole_halves and train_size is not None:
        raise UsageError(f"shadow models on whole halves of the pool take no train_size, got {train_size}")
    rng = np.random.default_rng(ctx.seed + 4242)
    in_mask = np.zeros((len(images), count), dtype=bool)
    nets: list[nn.Module] = []
    facts: list[dict[str, float]] = []
    deadline = time.monotonic() + budget_s
    for pair in range(count // 2):
        if time.monotonic() >= deadline:
            log.warning("reference models: the budget of %g s ran out after %d of %d models", budget_s, len(nets), count)
            break
        order = rng.permutation(len(images))
        size = min(len(images) // 2, train_size or len(images))
        halves = []
        for part in (order[: len(images) // 2], order[len(images) // 2:]):
            chosen = np.zeros(len(images), dtype=bool)
            chosen[part if whole_halves else part[:size]] = True
            halves.append(chosen)
        for k, chosen in ((2 * pair, halves[0]), (2 * pair + 1, halves[1])):
            ctx.check_deadline()
            idx = torch.from_numpy(np.flatnonzero(chosen))
            started = time.monotonic()
            with torch.random.fork_rng(devices=[]):  # seeded here, and the host's random state is as it was afterwards
                torch.manual_seed(ctx.seed + k)   # the initial weights too: the same run trains the same models
                net = factory(tuple(images.shape[1:]), target.num_classes)
                if not isinstance(net, nn.Module):
                    raise UsageError(f"reference_factory returned {type(net).__name__}, expected a torch.nn.Module")
                wrapped = nn.Sequential(target.preprocess, net)
                facts.append(fit(wrapped, images[idx], labels[idx], epochs=epochs, lr=lr, batch_size=batch_size, seed=ctx.seed + k,
                                 deadline=deadline, target_loss=target_loss, weight_decay=weight_decay))
            facts[-1]["seconds"] = time.monotonic() - started
            nets.append(wrapped.eval())
            in_mask[:, k] = chosen
            log.info("reference model %d/%d trained on %d images: %d epochs, mean training loss %.3g, %.0f s", k + 1, count, len(idx),
                     facts[-1]["epochs"], facts[-1]["train_loss"], facts[-1]["seconds"])
    return nets, in_mask[:, :len(nets)], facts


def matched_out_mask(in_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exactly one OUT model per pair for every example: the model of the pair not trained on it, or a seeded random one
    of the two when neither was (members and held-out non-members are never trained on).

    Every scored example (calibration, member, held-out) thus gets its ``Pr_OUT`` from the same number of models, so the
    calibration non-members' scores are exchangeable with the held-out non-members' and the thresholds set on them
    reach their FPR. Averaging over all OUT models instead (two per pair for a held-out image, often one for a
    calibration image) makes the calibration scores noisier than the held-out ones: thresholds too high, FPR and TPR
    understated (bench_membership measured a held-out FPR of 0.06-0.34% at a target of 1% that way).
    """
    in_mask = np.asarray(in_mask, dtype=bool)
    if in_mask.ndim != 2 or in_mask.shape[1] % 2:
        raise ValueError(f"expected an [examples, 2 x pairs] mask of reference models, got {list(in_mask.shape)}")
    first, second = in_mask[:, 0::2], in_mask[:, 1::2]
    if (first & second).any():
        raise ValueError("an example is IN for both models of a pair; pairs must train on disjoint halves")
    pick_second = np.where(first, True, np.where(second, False, rng.random(first.shape) < 0.5))
    out = np.zeros_like(in_mask)
    out[:, 0::2], out[:, 1::2] = ~pick_second, pick_second
    return out


@torch.no_grad()
def reference_scaled_logits(nets: list[nn.Module], images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> np.ndarray:
    """LiRA's ``φ = log(p_y / (1 - p_y))`` of every image under every reference model, [len(images), len(nets)], float64."""
    from auditor_membership.signals import log_odds

    out = np.empty((len(images), len(nets)))
    y = labels.numpy()
    for k, net in enumerate(nets):
        parts = [net(images[i:i + batch_size]).double() for i in range(0, len(images), batch_size)]
        if parts:
            out[:, k] = log_odds(torch.cat(parts).numpy(), y)
    return out
