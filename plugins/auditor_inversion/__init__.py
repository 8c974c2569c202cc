"""``inversion``: conditioned-generator network inversion (Suhail & Sethi, "Network inversion of
convolutional neural nets", arXiv 2407.18002, and "Network inversion and its applications", 2411.17777).

A single generator G(z, c) learns, without any real data, inputs that the frozen classifier assigns to
each conditioned class. Loss: α·KL(P‖Q) + β·CE + γ·feature cosine + δ·Gram orthogonality on the
classifier's penultimate features. Needs input gradients (autograd, or the core's zeroth-order estimate
on query-only models, where the feature terms are dropped). Options: ``audit schema inversion``.

Reusable pieces: :mod:`.generator` (``ConditionedGenerator``), :mod:`.conditioning`, :mod:`.losses`,
:mod:`.features` (penultimate-layer finder), :mod:`.engine` (``train_generator``, ``sample``).
"""
from auditor import hookimpl
from auditor_inversion.attack import NetworkInversion


@hookimpl
def auditor_register_attacks():
    return [NetworkInversion]
