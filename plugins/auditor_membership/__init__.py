"""membership: calibrated membership inference, the auditor's second leakage axis.

"Can someone tell that this image was in the training set?" The plugin answers it from queries alone
(``requires = {QUERY}``) with the auditor's members and reference (non-member) set:

1. The reference set is split per class: ``calibration_fraction`` (half) **calibrates** (thresholds, RMIA's
   population), the rest is **held out** and measures the false-positive rate (FPR) the thresholds really reach.
2. Per-example scores, higher = more member-like: ``loss`` (log p_y), ``confidence`` (log-odds of the top
   class), ``modified_entropy`` (Song & Mittal 2021), ``scaled_logit`` (LiRA's log(p_y / (1 - p_y))), and
   ``rmia`` (Zarifzadeh et al. 2024, population form; without reference models it ranks like the loss), and with
   reference models ``lira`` (offline LiRA, Carlini et al. 2022, fixed variance; online LiRA in online mode).
3. Per score: ROC AUC and best-threshold balanced accuracy with percentile-bootstrap intervals; TPR at 1%
   and 0.1% FPR with thresholds set per class on the calibration non-members (conformal rule, expected FPR
   ≤ target) and exact Clopper-Pearson intervals; the held-out FPR reached. An FPR is *not supported* when
   fewer than 1/FPR held-out non-members exist, or too few calibration non-members (then one global threshold,
   or none).
4. Findings come from one **pre-declared primary score** (``primary``, default ``auto``: ``rmia`` with
   offline reference models, ``lira`` with online ones, ``scaled_logit`` without), never the best one after the fact:

   * high: the TPR's lower confidence bound at one of ``severity_fprs`` (1%, 0.1%; where supported) exceeds
     ``high_ratio`` (10) × the FPR reached, or the AUC's lower bound reaches ``auc_high`` (0.80);
   * medium: ``medium_ratio`` (3) × FPR, or ``auc_medium`` (0.65);
   * low: either lower bound above chance (FPR, 0.5); info: no signal at this sample size.

The ROC figure is public; the "most exposed members" figure shows training images and is private (left out
with ``--no-member-images``). Optional reference models (``reference_models``; ``reference_factory`` defaults to
``clone``, the target's own architecture re-initialised) are trained by the plugin on the calibration
non-members until they fit as tightly as the target fits its members (``reference_fit``), within ``reference_time_budget_s``; every scored example uses
one OUT model per pair, so that calibration and held-out scores are exchangeable. ``reference_mode = "online"`` trains
them instead as LiRA's online shadow models, on random halves of the pool of every scored image (members, calibration
and held-out non-members alike, each IN for half of them), and makes online LiRA's likelihood ratio the primary score
(:mod:`auditor_membership.online`). Full documentation,
including what a result does and does not mean: ``docs/membership.md``.
"""
from __future__ import annotations

from auditor import hookimpl
from auditor_membership.attack import MembershipInference
from auditor_membership.config import MembershipConfig

__all__ = ["MembershipConfig", "MembershipInference", "auditor_register_attacks"]


@hookimpl
def auditor_register_attacks() -> list[type[MembershipInference]]:
    """The attacks this plugin adds to auditor."""
    return [MembershipInference]
