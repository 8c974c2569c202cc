"""The kkt bench's summary (bench/kkt_summary.py) on constructed entries: the floor and goal read off the best run within
each budget, the controls summed, attacks compared only at one setting, claims paired only at one setting."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from kkt_summary import claim_lines, control_line, equal_budget_table, target_lines, variant_line


def _e(row: str, method: str, distinct: int, budget: float = 300.0, device: str = "cpu", copies: int | None = None, **extra) -> dict:
    return {"row": row, "method": method, "distinct_members": distinct, "likely_copies": distinct if copies is None else copies,
            "budget_s": budget, "status": "completed", "p_value": 0.01, "null_copy_rate": 0.008, "threads": 1,
            "metrics": {"steps": 1000, "restarts": 2}, **({"gpu": device} if device != "cpu" else {}), **extra}


def test_floor_and_goal_from_the_best_run_within_each_budget() -> None:
    entries = [_e("mnist-mlp-100", "kkt", 12, budget=1200), _e("mnist-mlp-100", "kkt", 31, budget=2400),  # over the budget
               _e("mnist-mlp-100", "kkt", 40, budget=600, variant="tuned"),  # a variant is not the default attack
               _e("mnist-mlp-100", "kkt", 6, budget=180, device="H200")]
    cpu, gpu = target_lines(entries)
    assert "best **12**" in cpu and "floor met; goal missed by 18" in cpu
    assert "best **6**" in gpu and "floor missed by 4" in gpu
    assert "not measured" in target_lines([])[0]
    assert variant_line(entries).startswith("* Other option sets on this row (`--variant`): tuned 40 (40 copies")
    assert variant_line([_e("mnist-mlp-50", "kkt", 3, variant="x")]) is None


def test_controls_count_every_likely_copy() -> None:
    line = control_line([_e("control-a", "kkt", 0), _e("control-b", "kkt", 1, copies=2), _e("control-a", "tldr", 0)])
    assert "kkt found **2** likely copies over 2 runs, the other attacks 0" in line


def test_equal_budgets_need_every_attack_at_one_setting() -> None:
    entries = [_e("r", "kkt", 5), _e("r", "tldr", 1), _e("r", "inversion", 0),
               _e("s", "kkt", 5), _e("s", "tldr", 1), _e("s", "inversion", 0, budget=600)]  # s: inversion at another budget
    table = equal_budget_table(entries)
    assert len(table) == 3 and table[2].startswith("| r | cpu, 300 s | 5 (5 copies")


def test_claims_pair_runs_at_one_setting_only() -> None:
    entries = [_e("mnist-mlp-100", "kkt", 7, budget=150, device="H200", concurrent=5),
               _e("mnist-mlp-100-parity", "kkt", 0, budget=150, device="H200", concurrent=5),
               _e("mnist-mlp-100-wd", "kkt", 4, budget=300)]  # no unregularised run at 300 s on the CPU: no pair
    multiclass, decay = claim_lines(entries)
    assert "10 digit labels 7" in multiclass and "parity labels (2 classes) 0" in multiclass
    assert "no matched pair yet" in decay
