"""Report figures from reconstruction scores: likely copies beside their members, closest reconstructions.

A reconstruction that is a likely copy *is* private training data. Without member images
(``--no-member-images``, reports that travel) it is replaced by a placeholder, its score stays in the
caption, and the attack's own figures (which may show it) are marked private so they are withheld too.
"""
from __future__ import annotations

import torch

from auditor.core.results import AttackResult, Figure, Scores
from auditor.report.images import pairs_grid, placeholder_like, png_base64

MAX_COPIES = 30
MAX_CLOSEST = 20


def _by_score(scores: Scores, keep: list[int]) -> list[int]:
    return sorted(keep, key=lambda i: -(scores.samples[i].nearest_member_ssim or 0.0))


def _scores_text(scores: Scores, order: list[int]) -> str:
    return ", ".join(f"{scores.samples[i].nearest_member_ssim:.2f}" for i in order)


def copies_figure(name: str, recon: torch.Tensor, members: torch.Tensor, scores: Scores, member_images: bool) -> Figure | None:
    """Each likely copy above the member it copies, most similar first (placeholders without member images)."""
    copies = [i for i, s in enumerate(scores.samples) if s.likely_copy and s.nearest_member is not None]
    if not copies:
        return None
    order = _by_score(scores, copies)[:MAX_COPIES]
    shown = f"the {len(order)} most similar of {len(copies)}" if len(order) < len(copies) else f"all {len(copies)}"
    what = f"{scores.comparison} similarity" if scores.comparison != "ssim" else "SSIM"
    head = (f"Likely copies ({shown}; {scores.distinct_members_recovered} distinct training images recovered), "
            f"ordered by {what}: ")
    if member_images:
        top, bottom = recon[order], members[torch.tensor([scores.samples[i].nearest_member for i in order])]
        return Figure(title=f"{name}: likely copies and their training images", private=True,
                      png_base64=png_base64(pairs_grid(top, bottom)),
                      caption=head + "each reconstruction (top row) above the member it copies (bottom row). "
                      + _scores_text(scores, order))
    return Figure(title=f"{name}: likely copies (withheld)", png_base64=png_base64(pairs_grid(placeholder_like(recon[order]), None)),
                  caption=head + "withheld, because a likely copy is private training data (--no-member-images). Scores: "
                  + _scores_text(scores, order))


def closest_figure(name: str, recon: torch.Tensor, members: torch.Tensor, scores: Scores, member_images: bool) -> Figure:
    """The reconstructions most similar to a member, above that member when member images are shown."""
    order = _by_score(scores, list(range(len(scores.samples))))[:MAX_CLOSEST]
    top = recon[order].clone()
    bottom = None
    withheld = [k for k, i in enumerate(order) if scores.samples[i].likely_copy]
    if member_images:
        idx = [scores.samples[i].nearest_member for i in order]
        if all(i is not None for i in idx):
            bottom = members[torch.tensor(idx)]
    elif withheld:
        top[withheld] = placeholder_like(top[withheld])
    caption = (f"The {len(order)} reconstructions most similar to a training image (top rows) "
               + ("above their nearest member (bottom rows). " if bottom is not None else "(member images withheld). ")
               + (f"{len(withheld)} likely copies are shown as placeholders. " if withheld and not member_images else "")
               + f"{'SSIM' if scores.comparison == 'ssim' else 'Affine-fit SSIM'}: " + _scores_text(scores, order))
    return Figure(title=f"{name}: closest reconstructions", png_base64=png_base64(pairs_grid(top, bottom)), caption=caption,
                  private=bottom is not None)


def score_figures(name: str, recon: torch.Tensor, members: torch.Tensor, result: AttackResult, member_images: bool) -> list[Figure]:
    """The core's figures for one attack; withholds the attack's own figures when it produced likely copies."""
    scores = result.scores
    if recon is None or scores is None or not scores.samples:
        return []
    figures = [f for f in (copies_figure(name, recon, members, scores, member_images),
                           closest_figure(name, recon, members, scores, member_images)) if f is not None]
    own = [f for f in result.figures if not f.private]
    if scores.likely_copies and own:
        for f in own:
            f.private = True
        if not member_images:
            result.notes.append(f"{len(own)} figure(s) from the attack withheld: they may show reconstructions that are "
                                "likely copies of training images (--no-member-images).")
    return figures
