"""Per-class statistics, the summary metrics and the class-grid figure of generated samples (inversion, tldr, kkt)."""
from __future__ import annotations

import torch

from auditor import (
    Classifier,
    Figure,
    Table,
    auto_scale,
    png_base64,
    rows_grid,
    ssim_matrix,
)
from auditor_inversion.features import tap_features


def class_statistics(model: Classifier, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[dict[str, float]]:
    """Per class: hit rate, mean confidence, diversity (mean pairwise SSIM, feature cosine)."""
    logits = model.logits(images)
    probs = logits.softmax(1)
    features = None
    try:
        net = model.module()
        device = next((b.device for b in net.buffers()), torch.device("cpu"))
        with tap_features(net) as tap, torch.no_grad():
            net(images.to(device))
            features = tap.value.cpu() if tap is not None and tap.value is not None else None
    except Exception:  # noqa: BLE001 - query-only models have no features
        features = None
    stats = []
    for k in range(num_classes):
        mask = labels == k
        if not mask.any():
            continue
        x = images[mask]
        sims = ssim_matrix(x, x) if min(x.shape[-2:]) >= 11 else None
        n = len(x)
        off = ~torch.eye(n, dtype=torch.bool)
        row = {"class": k, "n": n, "hit_rate": float((probs[mask].argmax(1) == k).float().mean()),
               "confidence": float(probs[mask, k].mean()),
               "diversity_ssim": float(sims[off].mean()) if sims is not None and n > 1 else float("nan")}
        if features is not None and n > 1:
            f = torch.nn.functional.normalize(features[mask], dim=1)
            row["feature_cosine"] = float((f @ f.T)[off].mean())
        stats.append(row)
    return stats


def summary_metrics(stats: list[dict[str, float]]) -> dict[str, float]:
    """Mean and minimum hit rate, mean confidence and mean diversity over the classes of ``class_statistics``."""
    hit = [s["hit_rate"] for s in stats]
    return {"hit_rate_mean": sum(hit) / len(hit), "hit_rate_min": min(hit),
            "confidence_mean": sum(s["confidence"] for s in stats) / len(stats),
            "diversity_ssim_mean": sum(s["diversity_ssim"] for s in stats) / len(stats)}


def statistics_table(title: str, stats: list[dict[str, float]], class_names: tuple[str, ...], caption: str = "") -> Table:
    """One row per class: samples, hit rate, confidence, diversity (mean pairwise SSIM) and feature cosine."""
    return Table(title=title, columns=["class", "samples", "hit rate", "confidence", "diversity (mean pairwise SSIM)", "feature cosine"],
                 rows=[[f"{s['class']} ({class_names[s['class']]})", s["n"], round(s["hit_rate"], 3), round(s["confidence"], 3),
                        round(s["diversity_ssim"], 3), round(s.get("feature_cosine", float("nan")), 3)] for s in stats],
                 caption=caption)


def class_grid_figure(title: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int, per_row: int = 10) -> Figure:
    rows = [images[labels == k][:per_row] for k in range(num_classes)]
    grid = rows_grid(rows, per_row, scale=auto_scale(images.shape[-1]))
    return Figure(title=title, png_base64=png_base64(grid), caption="One row per class (class 0 at the top).")
