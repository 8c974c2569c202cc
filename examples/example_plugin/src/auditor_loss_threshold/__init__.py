"""auditor-loss-threshold: membership inference by loss or confidence threshold, as a third-party auditor plugin.

Install it beside auditor (``pip install ./examples/example_plugin``) and it appears in ``audit plugins``
as the ``loss_threshold`` attack; run it with ``audit run MODEL --members M --reference R --plugins loss_threshold``.

What it measures: for the same number of members (training images) and non-members per class, the
model's cross-entropy loss on the true label and its top-class confidence. Members usually get a
lower loss and a higher confidence; a threshold on either separates them. Because the auditor holds
both sets, the attack is scored exactly:

* ROC AUC: the probability that a random member scores as more member-like than a random
  non-member (0.5 = no signal);
* TPR at 1% FPR: the share of members exposed by the threshold that falsely flags only 1% of the
  non-members (calibrated on them; chance is 1%). Reported for 10% FPR too.

Findings (thresholds in ``[attacks.loss_threshold]``; ``audit schema loss_threshold`` lists them):

* info when the AUC is within ``z_min`` (3) standard errors of 0.5 (Hanley-McNeil variance);
* high at AUC ≥ ``auc_high`` (0.75) or TPR@1%FPR ≥ ``tpr_high`` (0.10);
* medium at AUC ≥ ``auc_medium`` (0.60) or TPR@1%FPR ≥ ``tpr_medium`` (0.03);
* low when the signal is significant but below both.

TPR at 1% FPR needs at least ``min_reference_for_tpr`` (100) non-members before it counts toward a
finding. The attack only queries the model (``requires = {QUERY}``) and reconstructs no image, so the
core's reconstruction scoring is off (``AttackOutput(score=False)``).
"""
from __future__ import annotations

from auditor import hookimpl
from auditor_loss_threshold.attack import MembershipConfig, MembershipInference

__version__ = "0.1.0"
__all__ = ["MembershipConfig", "MembershipInference", "auditor_register_attacks"]


@hookimpl
def auditor_register_attacks() -> list[type[MembershipInference]]:
    """The attacks this plugin adds to auditor."""
    return [MembershipInference]
