"""Figures and tables of a bnn_sat run."""
from __future__ import annotations

import torch

from auditor import Figure, Table, png_base64, rows_grid


def grid_figure(title: str, rows: list[torch.Tensor], caption: str, private: bool = False) -> Figure:
    """One row per list entry ([n, C, H, W] in [0, 1]; rows may be empty), on grey, three times enlarged."""
    cols = max([len(r) for r in rows] + [1])
    grid = rows_grid(rows, cols, scale=3, fill=0.5, shape=(1, 8, 8))
    return Figure(title=title, png_base64=png_base64(grid), caption=caption, private=private)


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
