"""``tldr``: training-like data reconstruction (Suhail & Sethi, arXiv 2410.16884), built on ``inversion``.

Phase 1 learns each class's input space with soft conditioning (the inversion losses). Phase 2 switches
to one-hot ("hot") conditioning and adds what distinguishes training data: KL and CE on perturbed
images (robustness; perturbation in pixel space, scale ``perturbation``), total variation, a
pixel-range penalty, and the norm of the loss gradient with respect to the classifier's weights
(``create_graph=True``; dropped with a note on query-only models). Nine weighted, switchable terms:
``kl``, ``kl_pert``, ``ce``, ``ce_pert``, ``cosine``, ``ortho``, ``tv``, ``pix``, ``grad`` (weights and
defaults: ``audit schema tldr``). Reconstructions are scored by the core (Hungarian matched SSIM, calibrated likely
copies, member-minus-reference gap). Options: ``audit schema tldr``. Study: ``audit study privacy``.
"""
from auditor import hookimpl
from auditor_tldr.attack import TrainingLikeDataReconstruction


@hookimpl
def auditor_register_attacks():
    return [TrainingLikeDataReconstruction]


@hookimpl
def auditor_register_studies():
    from auditor_tldr.study import privacy_study

    return [privacy_study()]
