"""Pictures for reports: image grids as PNG, base64-encoded for self-contained HTML."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch


def to_uint8_hwc(grid: torch.Tensor) -> np.ndarray:
    """[C, H, W] in [0, 1] -> uint8 [H, W] or [H, W, 3]."""
    array = (grid.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))


def make_grid(images: torch.Tensor, ncol: int, pad: int = 2, scale: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile [N, C, H, W] images into one [C, H', W'] grid, row-major."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty [N, C, H, W] batch, got {list(images.shape)}")
    if scale > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    n, c, h, w = images.shape
    ncol = max(1, min(ncol, n))
    nrow = (n + ncol - 1) // ncol
    grid = torch.full((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), pad_value)
    for i in range(n):
        r, col = divmod(i, ncol)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = images[i]
    return grid


def png_base64(grid: torch.Tensor) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_uint8_hwc(grid)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def auto_scale(height: int) -> int:
    return max(1, 64 // max(height, 1))


def rows_grid(rows: list[torch.Tensor], ncol: int, scale: int = 1, fill: float = 1.0,
              shape: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Tile rows of images ([n, C, H, W] each, n <= ``ncol``; a row may be empty) into one grid, padding short rows with
    ``fill`` tiles. ``shape`` (C, H, W) is needed only when every row is empty."""
    tile = next((tuple(r.shape[1:]) for r in rows if len(r)), shape)
    if tile is None:
        raise ValueError("rows_grid: every row is empty and no tile shape was given")
    padded = [torch.cat([r.detach().float().cpu()[:ncol], torch.full((ncol - min(len(r), ncol), *tile), fill)]) for r in rows]
    return make_grid(torch.cat(padded), ncol=ncol, scale=scale, pad_value=fill)


def pairs_grid(top: torch.Tensor, bottom: torch.Tensor | None, ncol: int = 10) -> torch.Tensor:
    """Reconstructions on one row and (optionally) their matched images on the row below, repeated."""
    rows = []
    for start in range(0, len(top), ncol):
        rows.append(top[start:start + ncol])
        if bottom is not None:
            rows.append(bottom[start:start + ncol])
    return rows_grid(rows, ncol, scale=auto_scale(top.shape[-1]))


def figure_base64(fig: object, dpi: int | None = None) -> str:
    """A matplotlib figure as base64 PNG (closed afterwards)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **({"dpi": dpi} if dpi else {}))  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def placeholder_like(images: torch.Tensor) -> torch.Tensor:
    """Grey tiles crossed by two dark diagonals, shaped like ``images``: a withheld picture."""
    n, c, h, w = images.shape
    tile = torch.full((c, h, w), 0.75)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    cross = ((ys - xs).abs() < 1.5 / max(h, w)) | ((ys + xs - 1).abs() < 1.5 / max(h, w))
    tile[:, cross] = 0.35
    return tile.expand(n, c, h, w).clone()
