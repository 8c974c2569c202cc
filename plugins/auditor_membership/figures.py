"""The report's pictures: ROC curves of every score (not private) and the most exposed members (private)."""
from __future__ import annotations

import numpy as np
import torch

from auditor import Figure, auto_scale, figure_base64, make_grid, png_base64


def _roc(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([members, nonmembers])
    is_member = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    order = np.argsort(-scores, kind="mergesort")
    s, m = scores[order], is_member[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    return np.r_[0.0, np.cumsum(1 - m)[last] / len(nonmembers)], np.r_[0.0, np.cumsum(m)[last] / len(members)]


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], primary: str, n_held_out: int) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.7), dpi=110)
    floor = min(1.0 / max(n_held_out, 1), 1e-3)
    styles = ["-", (0, (5, 2)), (0, (1, 1.5)), "-.", (0, (3, 1, 1, 1))]
    for i, (name, (members, nonmembers)) in enumerate(curves.items()):
        fpr, tpr = _roc(members, nonmembers)
        width = 2.6 if name == primary else 1.4
        label = name + (" (primary)" if name == primary else "")
        axes[0].plot(fpr, tpr, lw=width, ls=styles[i % len(styles)], label=label)
        axes[1].plot(np.maximum(fpr, floor / 2), np.maximum(tpr, floor / 2), lw=width, ls=styles[i % len(styles)])
    axes[0].plot([0, 1], [0, 1], ls=":", color="#888", lw=1, label="chance")
    axes[1].plot([floor / 2, 1], [floor / 2, 1], ls=":", color="#888", lw=1)
    for alpha in (0.01, 0.001):
        axes[1].axvline(alpha, color="#b3261e", lw=0.8, ls="--")
    axes[0].set(xlabel="false-positive rate (held-out non-members)", ylabel="true-positive rate (members)", xlim=(0, 1), ylim=(0, 1.01))
    axes[1].set(xscale="log", yscale="log", xlabel="false-positive rate (log)", ylabel="true-positive rate (log)",
                xlim=(floor / 2, 1), ylim=(floor / 2, 1.05))
    axes[1].set_title("low-FPR regime (red: 1% and 0.1%)", fontsize=9)
    axes[0].legend(fontsize=7.5, loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return Figure(title="Membership inference ROC (members vs held-out non-members)",
                  png_base64=figure_base64(fig),
                  caption="One global threshold swept over each score; the dotted diagonal is chance. The TPRs in the table use "
                          "per-class thresholds set on the calibration non-members instead, so they can differ slightly.")


def exposed_members_figure(images: torch.Tensor, labels: list[str], pvalues: np.ndarray, primary: str) -> Figure:
    """The members the primary score singles out most (smallest per-class p-value first). Private: training images."""
    grid = make_grid(images, ncol=min(10, len(images)), scale=auto_scale(images.shape[-2]))
    listing = ", ".join(f"{lab} (p={p:.3g})" for lab, p in zip(labels, pvalues))
    return Figure(title="Most exposed members", png_base64=png_base64(grid), private=True,
                  caption=f"The {len(images)} training images whose {primary} score is most unusual for a non-member of their class "
                          f"(p: share of the class's calibration non-members scoring at least as member-like; row-major): {listing}.")
