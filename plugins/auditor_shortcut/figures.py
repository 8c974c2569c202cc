"""Report pictures of the shortcut plugin: pull heatmaps per class, patched examples, marked reconstructions."""
from __future__ import annotations

import torch

from auditor import Figure, auto_scale, figure_base64, png_base64, rows_grid
from auditor_shortcut.evidence import mark_boxes
from auditor_shortcut.probe import ProbeResult, paste


def heatmap_png(result: ProbeResult, class_names: tuple[str, ...], image_side: tuple[int, int]) -> str:
    """One panel per class: pull to that class by patch position (max over intensity levels); the best patch boxed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    k = result.pull.shape[-1]
    ncol = min(5, k)
    nrow = (k + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.1 * ncol + 0.8, 2.1 * nrow), dpi=100, squeeze=False)
    height, width = image_side
    s = result.size
    extent = (result.cols[0] - 0.5, result.cols[-1] + s - 0.5, result.rows[-1] + s - 0.5, result.rows[0] - 0.5)
    image = None
    for target in range(nrow * ncol):
        ax = axes[target // ncol][target % ncol]
        ax.set_xticks([])
        ax.set_yticks([])
        if target >= k:
            ax.axis("off")
            continue
        grid = result.heatmap(target).clamp(min=0).numpy()
        image = ax.imshow(grid, cmap="magma", vmin=0.0, vmax=1.0, extent=extent, interpolation="nearest")
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        best = result.best[target] if target < len(result.best) else None
        if best is not None:
            ax.add_patch(Rectangle((best.col - 0.5, best.row - 0.5), s, s, fill=False, edgecolor="cyan", linewidth=1.2))
            ax.set_title(f"{class_names[target][:12]}: {best.pull:.2f}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="pull")
    return figure_base64(fig)


def heatmap_figure(result: ProbeResult, class_names: tuple[str, ...], image_side: tuple[int, int]) -> Figure:
    return Figure(title="Patch pull per class", png_base64=heatmap_png(result, class_names, image_side),
                  caption=f"Share of other classes' clean images that a {result.size}×{result.size} patch pulls to each class, "
                          "by patch position (the patch covers the pixel and the next ones down/right; max over intensity "
                          f"levels {', '.join(f'{v:g}' for v in result.levels)}; search set). Cyan box: the class's strongest "
                          "patch; the title gives its pull on the confirmation set.")


def patched_examples_figure(result: ProbeResult, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                            per_row: int = 8) -> Figure:
    """Row k: clean images of other classes with class k's strongest patch pasted (boxed)."""
    rows = []
    scale = auto_scale(images.shape[-1])
    for best in result.best:
        x = images[labels != best.target][:per_row]
        x = paste(x, best.row, best.col, best.size, best.level)
        rows.append(mark_boxes(x, [(best.row, best.col, best.size)] * len(x), scale, color=(0.1, 0.9, 0.9)))
    grid = rows_grid(rows, per_row)
    return Figure(title="Clean images with each class's strongest patch", png_base64=png_base64(grid),
                  caption="Row k: images of other classes with the patch that pulls most to class k pasted in (cyan box). "
                          "Row 0 at the top.")


def marked_reconstructions_figure(recon: torch.Tensor, labels: torch.Tensor, num_classes: int,
                                  boxes: dict[int, tuple[int, int, int]], title: str, caption: str, per_row: int = 8,
                                  color: tuple[float, float, float] = (1.0, 0.1, 0.1)) -> Figure:
    """One row per class of reconstructions, each with its class's region boxed (``boxes[k] = (row, col, size)``)."""
    rows = []
    scale = auto_scale(recon.shape[-1])
    for k in range(num_classes):
        x = recon[labels == k][:per_row]
        if not len(x):
            continue
        rows.append(mark_boxes(x, [boxes.get(k)] * len(x), scale, color=color))
    grid = rows_grid(rows, per_row)
    return Figure(title=title, png_base64=png_base64(grid), caption=caption)
