"""ROC analysis of a membership score (higher = more likely a member), in plain numpy, and its figure."""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roc:
    """A ROC curve: ``fpr[i]``/``tpr[i]`` are the rates when everything scoring ``>= thresholds[i]`` is called a member."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_members: int
    n_reference: int

    @property
    def auc(self) -> float:
        """Area under the curve (equals the Mann-Whitney probability that a member outscores a non-member, ties half)."""
        return float(np.sum(np.diff(self.fpr) * (self.tpr[1:] + self.tpr[:-1]) / 2))

    def tpr_at(self, fpr: float) -> float:
        """The highest true-positive rate reachable with a false-positive rate of at most ``fpr``."""
        ok = self.fpr <= fpr + 1e-12
        return float(self.tpr[ok].max()) if ok.any() else 0.0

    def threshold_at(self, fpr: float) -> float:
        """The score threshold that reaches :meth:`tpr_at` (members score at or above it)."""
        ok = np.flatnonzero(self.fpr <= fpr + 1e-12)
        best = ok[np.argmax(self.tpr[ok])]
        return float(self.thresholds[best])

    def best_balanced_accuracy(self) -> float:
        """Balanced accuracy of the best single threshold, (TPR + 1 - FPR) / 2."""
        return float(((self.tpr + 1.0 - self.fpr) / 2).max())

    def null_z(self) -> float:
        """How many standard errors the AUC lies above 0.5, with the Hanley-McNeil variance under no signal."""
        n1, n2 = self.n_members, self.n_reference
        se = math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
        return (self.auc - 0.5) / se


def roc_curve(member_scores: np.ndarray, reference_scores: np.ndarray) -> Roc:
    """The full ROC curve (one point per distinct score, starting at (0, 0))."""
    members = np.asarray(member_scores, dtype=np.float64).ravel()
    reference = np.asarray(reference_scores, dtype=np.float64).ravel()
    if len(members) == 0 or len(reference) == 0:
        raise ValueError(f"need scores of both members and non-members, got {len(members)} and {len(reference)}")
    if not (np.isfinite(members).all() and np.isfinite(reference).all()):
        raise ValueError("membership scores must be finite")
    scores = np.concatenate([members, reference])
    is_member = np.concatenate([np.ones(len(members)), np.zeros(len(reference))])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_member = scores[order], is_member[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    tp = np.cumsum(is_member)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    tpr = np.r_[0.0, tp / len(members)]
    fpr = np.r_[0.0, fp / len(reference)]
    thresholds = np.r_[np.inf, scores[last_of_tie]]
    return Roc(fpr, tpr, thresholds, len(members), len(reference))


def roc_figure_png(curves: dict[str, Roc], title: str) -> str:
    """ROC curves (linear and log-log) as a base64 PNG: matplotlib when installed, otherwise Pillow."""
    try:
        import matplotlib
    except ImportError:
        return _roc_png_pillow(curves, title)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6), dpi=110)
    floor = min(1.0 / max(max(r.n_reference for r in curves.values()), 1), 0.01)  # the log axes always show the 1% FPR line
    styles = ["-", (0, (5, 2)), (0, (1, 1.5)), "-."]  # curves that coincide (all predictions right) stay visible
    for i, (name, roc) in enumerate(curves.items()):
        label = f"{name} (AUC {roc.auc:.3f}, TPR@1% {roc.tpr_at(0.01):.1%})"
        style = styles[i % len(styles)]
        axes[0].plot(roc.fpr, roc.tpr, lw=2, ls=style, label=label)
        axes[1].plot(np.maximum(roc.fpr, floor / 2), np.maximum(roc.tpr, floor / 2), lw=2, ls=style, label=name)
    axes[0].plot([0, 1], [0, 1], ls=":", color="#888", lw=1, label="chance")
    axes[1].plot([floor / 2, 1], [floor / 2, 1], ls=":", color="#888", lw=1)
    axes[1].axvline(0.01, color="#b3261e", lw=1, ls="--")
    axes[0].set(xlabel="false-positive rate (non-members flagged)", ylabel="true-positive rate (members found)", xlim=(0, 1), ylim=(0, 1.01))
    axes[1].set(xscale="log", yscale="log", xlabel="false-positive rate (log)", ylabel="true-positive rate (log)",
                xlim=(floor / 2, 1), ylim=(floor / 2, 1.05))
    axes[1].set_title("low false-positive regime (red: 1% FPR)", fontsize=9)
    axes[0].legend(fontsize=7.5, loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _roc_png_pillow(curves: dict[str, Roc], title: str) -> str:
    from PIL import Image, ImageDraw

    size, pad = 360, 40
    image = Image.new("RGB", (size + 2 * pad, size + 2 * pad), "white")
    draw = ImageDraw.Draw(image)

    def xy(f: float, t: float) -> tuple[float, float]:
        return pad + f * size, pad + (1 - t) * size

    draw.rectangle([xy(0, 1), xy(1, 0)], outline="#444")
    draw.line([xy(0, 0), xy(1, 1)], fill="#999", width=1)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for i, (name, roc) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        draw.line([xy(f, t) for f, t in zip(roc.fpr, roc.tpr)], fill=color, width=2)
        draw.text((pad + 8, pad + 8 + 14 * i), f"{name}: AUC {roc.auc:.3f}", fill=color)
    draw.text((pad, 12), title, fill="#000")
    draw.text((pad, pad + size + 10), "false-positive rate ->", fill="#444")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
