"""LiRA (Carlini et al., S&P 2022) from the plugin's reference models: offline with a fixed variance, and online.

LiRA works on the scaled logit ``φ = log(p_y / (1 - p_y))``. Offline, it fits a Gaussian to ``φ`` of each example
under the reference models that were **not** trained on it (OUT models) and scores the target's ``φ`` by how far it
lies above that fit. With few reference models the paper uses one global variance instead of per-example ones;
dividing by a constant does not change any ranking, threshold or AUC, so the score is

    lira(x) = φ_target(x) - mean_{OUT models k} φ_k(x)

(higher = more member-like).

Online (``reference_mode = "online"``), the shadow models train on random halves of a pool that holds every scored
example, so each example has IN models (trained on it) and OUT models. LiRA fits one Gaussian to ``φ`` under each
and scores the target's ``φ`` by the log likelihood ratio ``log N(φ; μ_in, σ_in²) - log N(φ; μ_out, σ_out²)``, with
one shared ``σ_in`` and ``σ_out`` when there are few shadow models, as the paper does. Unlike RMIA's probability ratio, it keeps its resolution where a model is very
confident: ``p_y = 1 - 1e-7`` and ``1 - 1e-6`` differ by 2.3 in ``φ`` but by a factor 1.000001 in probability.
"""
from __future__ import annotations

import numpy as np


def offline_scores(phi_target: np.ndarray, phi_reference: np.ndarray, out_mask: np.ndarray | None = None) -> np.ndarray:
    """``φ_target - mean of φ over OUT reference models`` per example (rows: examples, columns: models; all OUT when no mask)."""
    phi_reference = np.asarray(phi_reference, dtype=np.float64)
    if phi_reference.ndim != 2 or len(phi_reference) != len(phi_target):
        raise ValueError(f"expected reference scaled logits of shape [{len(phi_target)}, models], got {list(phi_reference.shape)}")
    mask = np.ones(phi_reference.shape, dtype=bool) if out_mask is None else np.asarray(out_mask, dtype=bool)
    counts = mask.sum(axis=1)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} examples have no reference model that was not trained on them")
    return np.asarray(phi_target, dtype=np.float64) - np.where(mask, phi_reference, 0.0).sum(axis=1) / counts


VARIANCE_AUTO_MIN = 32  # per-example variances from this many IN and OUT models each (the paper: 64 shadow models)


def _side_fit(phi: np.ndarray, mask: np.ndarray, per_example: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``φ`` per example over the models where ``mask`` is True.

    Per example: the sample standard deviation (ddof 1). Global: one standard deviation for every example, pooled
    from the deviations from each example's own mean (``Σ (φ - μ_i)² / Σ (n_i - 1)``); with one model per example
    there is no within-example spread, and the spread of all values is used instead.
    """
    counts = mask.sum(axis=1)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} examples lack a model on one side (IN or OUT); online LiRA needs both")
    mean = np.where(mask, phi, 0.0).sum(axis=1) / counts
    squares = np.where(mask, (phi - mean[:, None]) ** 2, 0.0).sum(axis=1)
    if per_example:
        if (counts < 2).any():
            raise ValueError("per-example variances need at least two models on each side for every example")
        std = np.sqrt(squares / (counts - 1))
    else:
        dof = float((counts - 1).sum())
        std = np.full(len(phi), np.sqrt(squares.sum() / dof) if dof > 0 else float(np.std(phi[mask])))
    return mean, np.maximum(std, 1e-6)


def online_scores(phi_target: np.ndarray, phi_shadow: np.ndarray, in_mask: np.ndarray,
                  variance: str = "auto") -> tuple[np.ndarray, str]:
    """Online LiRA (Carlini et al. 2022): ``log N(φ_t; μ_in, σ_in²) - log N(φ_t; μ_out, σ_out²)`` per example.

    ``phi_shadow[i, k]`` is example ``i``'s scaled logit under shadow model ``k``, ``in_mask[i, k]`` whether ``k``
    trained on ``i``. ``variance``: ``per_example`` (each example's own IN and OUT spreads), ``global`` (one IN and one
    OUT spread shared by all examples; the paper's choice with few shadow models) or ``auto`` (per example once every
    example has at least ``VARIANCE_AUTO_MIN`` IN and OUT models). Returns the scores and the variance mode used.
    """
    phi_shadow = np.asarray(phi_shadow, dtype=np.float64)
    in_mask = np.asarray(in_mask, dtype=bool)
    phi_target = np.asarray(phi_target, dtype=np.float64)
    if phi_shadow.ndim != 2 or phi_shadow.shape != in_mask.shape or len(phi_shadow) != len(phi_target):
        raise ValueError(f"expected shadow scaled logits and an IN mask of shape [{len(phi_target)}, models], got "
                         f"{list(phi_shadow.shape)} and {list(in_mask.shape)}")
    if variance not in ("auto", "global", "per_example"):
        raise ValueError(f"variance must be auto, global or per_example, got {variance!r}")
    if variance == "auto":
        fewest = min(int(in_mask.sum(axis=1).min(initial=0)), int((~in_mask).sum(axis=1).min(initial=0)))
        variance = "per_example" if fewest >= VARIANCE_AUTO_MIN else "global"
    per_example = variance == "per_example"
    mu_in, sd_in = _side_fit(phi_shadow, in_mask, per_example)
    mu_out, sd_out = _side_fit(phi_shadow, ~in_mask, per_example)

    def log_density(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
        return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd)   # the common -log √(2π) cancels in the ratio

    return log_density(phi_target, mu_in, sd_in) - log_density(phi_target, mu_out, sd_out), variance


def online_scores_augmented(phi_target: np.ndarray, phi_shadow: np.ndarray, in_mask: np.ndarray,
                            variance: str = "auto") -> tuple[np.ndarray, str]:
    """Online LiRA with several queries per example (LiRA's augmented queries, diagonal covariance).

    ``phi_target[i, a]``: example ``i``'s scaled logit under the target and query (augmentation) ``a``;
    ``phi_shadow[i, k, a]``: under shadow model ``k``. Each query gets its own IN and OUT Gaussians (as
    :func:`online_scores`), and the queries are treated as independent: the score is the sum over queries of the
    per-query log likelihood ratios. With one query it is :func:`online_scores`.
    """
    phi_target = np.asarray(phi_target, dtype=np.float64)
    phi_shadow = np.asarray(phi_shadow, dtype=np.float64)
    if phi_target.ndim != 2 or phi_shadow.ndim != 3 or phi_shadow.shape[::2] != phi_target.shape:
        raise ValueError(f"expected target scaled logits [examples, queries] and shadow ones [examples, models, queries], got "
                         f"{list(phi_target.shape)} and {list(phi_shadow.shape)}")
    total, mode = np.zeros(len(phi_target)), variance
    for a in range(phi_target.shape[1]):
        part, mode = online_scores(phi_target[:, a], phi_shadow[:, :, a], in_mask, variance)
        total += part
    return total, mode
