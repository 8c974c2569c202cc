"""The patch probe: paste candidate patches into clean images and measure how far predictions follow.

For a candidate (size s, top-left (r, c), intensity v) and a target class k, the *pull* is the share
of clean images of the other classes that the model assigns to k with the patch pasted, minus the
share it assigns to k without it. A patch that controls class k has a pull near 1. The search has
three stages, all query-only:

1. every grid position × each coarse intensity level, on a small search set;
2. for each class, the intensity sweep (``refine_levels``) at that class's best position;
3. each class's best candidate confirmed on a larger, disjoint set of clean images.

Candidates are ranked by pull, ties broken by the mean probability of the target class.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

from auditor import Classifier

Progress = Callable[[Iterable[int], str, int], Iterator[int]]


def grid_positions(side: int, size: int, stride: int) -> list[int]:
    """Top-left coordinates 0, stride, 2·stride, ... plus the last position that fits, so the border is covered."""
    last = side - size
    if last < 0:
        raise ValueError(f"a {size}px probe patch does not fit a {side}px image side")
    out = list(range(0, last + 1, stride))
    if out[-1] != last:
        out.append(last)
    return out


def auto_patch_size(height: int, width: int, max_area_fraction: float) -> int:
    """The largest square side whose area is at most ``max_area_fraction`` of the image (at least 1)."""
    return max(1, int(math.floor(math.sqrt(max_area_fraction * height * width) + 1e-9)))


def paste(images: torch.Tensor, row: int, col: int, size: int, value: float) -> torch.Tensor:
    out = images.clone()
    out[:, :, row:row + size, col:col + size] = value
    return out


@dataclass
class Candidate:
    """One patch and what it does to the images of the other classes, for one target class."""

    target: int
    row: int
    col: int
    size: int
    level: float
    pull: float
    prob: float
    accuracy_drop: float = float("nan")
    images: int = 0


@dataclass
class ProbeResult:
    """Stage-1 maps and each class's best (stage-3 confirmed) candidate."""

    size: int
    rows: list[int]
    cols: list[int]
    levels: list[float]
    pull: torch.Tensor            # [R, C, L, K] stage-1 pull
    prob: torch.Tensor            # [R, C, L, K] stage-1 mean target probability on other-class images
    clean_accuracy: float
    best: list[Candidate] = field(default_factory=list)  # one per class, confirmed
    queries: int = 0

    def heatmap(self, k: int) -> torch.Tensor:
        """[R, C] pull to class k, maximised over intensity levels."""
        return self.pull[..., k].amax(dim=2)


class _Evaluator:
    """Batched model queries on one image set: pull and target probability for every class."""

    def __init__(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> None:
        self.model, self.images, self.labels, self.batch_size = model, images, labels, batch_size
        k = model.num_classes
        self.other = (labels[:, None] != torch.arange(k)[None, :]).float()  # [N, K]
        self.n_other = self.other.sum(0).clamp_min(1.0)
        clean = self._probs(images)
        self.clean_pred = clean.argmax(1)
        self.clean_accuracy = float((self.clean_pred == labels).float().mean())
        self.base_pull = (torch.nn.functional.one_hot(self.clean_pred, k).float() * self.other).sum(0) / self.n_other
        self.queries = len(images)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model.logits(x[i:i + self.batch_size]).float().softmax(1) for i in range(0, len(x), self.batch_size)])

    def evaluate(self, patches: list[tuple[int, int, int, float]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each (row, col, size, level): pull [P, K], target prob [P, K], accuracy drop [P]."""
        n, k = len(self.images), self.model.num_classes
        batch = torch.cat([paste(self.images, r, c, s, v) for r, c, s, v in patches])
        probs = self._probs(batch).view(len(patches), n, k)
        self.queries += len(batch)
        pred = probs.argmax(2)
        hits = torch.nn.functional.one_hot(pred, k).float() * self.other[None]
        pull = hits.sum(1) / self.n_other - self.base_pull
        prob = (probs * self.other[None]).sum(1) / self.n_other
        drop = self.clean_accuracy - (pred == self.labels[None]).float().mean(1)
        return pull, prob, drop


def _rank(pull: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
    return pull + 1e-4 * prob


def probe(model: Classifier, search: tuple[torch.Tensor, torch.Tensor], confirm: tuple[torch.Tensor, torch.Tensor], *,
          size: int, stride: int, levels: list[float], refine_levels: list[float], batch_size: int = 1024,
          progress: Progress | None = None) -> ProbeResult:
    """Run the three-stage search (see the module docstring); ``progress`` wraps loops (deadline checks)."""
    _, height, width = model.input_shape
    rows, cols = grid_positions(height, size, stride), grid_positions(width, size, stride)
    k = model.num_classes
    walk = progress or (lambda it, desc, total: iter(it))
    ev = _Evaluator(model, *search, batch_size=batch_size)
    grid = [(r, c, size, v) for r in rows for c in cols for v in levels]
    pull, prob, _ = _evaluate_in_chunks(ev, grid, batch_size, walk, "shortcut probe")
    pull, prob = pull.view(len(rows), len(cols), len(levels), k), prob.view(len(rows), len(cols), len(levels), k)
    result = ProbeResult(size, rows, cols, list(levels), pull, prob, ev.clean_accuracy)

    # stage 2: intensity sweep at each class's best stage-1 position
    score = _rank(pull, prob).amax(dim=2)  # [R, C, K]
    stage2: list[tuple[int, int, int, float]] = []
    for target in range(k):
        flat = int(score[..., target].argmax())
        r, c = rows[flat // len(cols)], cols[flat % len(cols)]
        best_level = levels[int(_rank(pull, prob)[flat // len(cols), flat % len(cols), :, target].argmax())]
        stage2.append((r, c, size, best_level))
        stage2 += [(r, c, size, v) for v in refine_levels if v not in levels]
    pull2, prob2, _ = _evaluate_in_chunks(ev, stage2, batch_size, walk, "shortcut refine")
    chosen: list[tuple[int, int, int, float]] = []
    per_class = len(stage2) // k if k else 0
    for target in range(k):
        block = slice(target * per_class, (target + 1) * per_class)
        j = int(_rank(pull2[block, target], prob2[block, target]).argmax())
        chosen.append(stage2[block][j])
    result.queries = ev.queries

    # stage 3: confirm on held-out clean images
    cev = _Evaluator(model, *confirm, batch_size=batch_size)
    pull3, prob3, drop3 = _evaluate_in_chunks(cev, chosen, batch_size, walk, "shortcut confirm")
    for target, (r, c, s, v) in enumerate(chosen):
        result.best.append(Candidate(target, r, c, s, v, float(pull3[target, target]), float(prob3[target, target]),
                                     float(drop3[target]), images=int(cev.n_other[target])))
    result.queries += cev.queries
    return result


def _evaluate_in_chunks(ev: _Evaluator, patches: list[tuple[int, int, int, float]], batch_size: int, walk: Progress,
                        desc: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    per_call = max(1, batch_size // max(len(ev.labels), 1))
    starts = range(0, len(patches), per_call)
    parts = [ev.evaluate(patches[i:i + per_call]) for i in walk(starts, desc, len(starts))]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])


def within_cell(found: tuple[int, int], planted: tuple[int, int], stride: int) -> bool:
    """True when a found top-left corner lies within one probe-grid cell (``stride`` px) of the planted one."""
    return abs(found[0] - planted[0]) <= stride and abs(found[1] - planted[1]) <= stride
