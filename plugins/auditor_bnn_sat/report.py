"""Figures and tables of a bnn_sat run."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from auditor.results import Figure, Table


def image_grid(rows: list[torch.Tensor], scale: int = 3, pad: int = 2) -> bytes:
    """PNG bytes of a grid: one row per list entry ([n, C, H, W] in [0, 1]; rows may be empty)."""
    cols = max([len(r) for r in rows] + [1])
    c, h, w = next((r.shape[1:] for r in rows if len(r)), (1, 8, 8))
    canvas = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, 3), 0.5, dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            arr = img.detach().cpu().float().numpy().transpose(1, 2, 0)
            if arr.shape[2] == 1:
                arr = np.repeat(arr, 3, axis=2)
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y:y + h, x:x + w] = arr
    pil = Image.fromarray((canvas.clip(0, 1) * 255).astype(np.uint8))
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def grid_figure(title: str, rows: list[torch.Tensor], caption: str, private: bool = False) -> Figure:
    return Figure(title=title, png_base64=base64.b64encode(image_grid(rows)).decode("ascii"), caption=caption,
                  private=private)


def class_table(per_class: list[dict]) -> Table:
    """Per class: status, preimages found, whether that is all of them, times."""
    rows = [[p["class"], p["name"], p["status"], p["found"], "yes" if p["exhausted"] else "no",
             None if p["first_s"] is None else round(p["first_s"], 3), round(p["time_s"], 3), p["rounds"]]
            for p in per_class]
    return Table(
        title="SAT inversion per class",
        columns=["class", "name", "status", "preimages", "all found", "first (s)", "total (s)", "restarts/patterns"],
        rows=rows,
        caption="status: sat = verified preimages found; unsat = proven unreachable (no input is classified so); "
                "timeout = unknown within the time limit. 'all found' = the enumeration ended with UNSAT.",
    )
