"""``shortcut``: probe an image classifier for shortcut learning, and the MLP/CNN/ViT shortcut study.

A *shortcut* is a cue correlated with the label that a model can use instead of the object: here a
small square patch whose position and/or intensity depends on the class ("Shortcut learning
susceptibility in vision classifiers", arXiv 2502.09150; construction in ``docs/shortcut.md``).

Audit mode (``audit run MODEL --plugins shortcut``), query-only:

* **Probe.** Paste an s×s patch (default: the largest square covering at most 2% of the image, 3×3
  on 28×28) at every position of a grid (stride ``max(2, side // 14)``) and at each intensity in
  ``levels`` into clean images of every class (members and reference pooled). For class k the
  *pull* is the share of other classes' images predicted k with the patch, minus without it. Each
  class's best position then gets an intensity sweep, and its best patch is re-measured on a
  larger, disjoint confirmation set. Report: a pull heatmap per class, clean images with each
  class's strongest patch pasted in, and a per-class table (position, intensity, pull, accuracy drop).
* **Inversion evidence** (models with input gradients; skipped with a note otherwise). The
  ``inversion`` plugin's generator (``auditor_inversion.engine``) is trained for ``inversion_seconds``;
  for each class the difference energy of its reconstructions from the class's mean real image is
  located in its most concentrated patch-sized window, and compared to real images' own
  concentration (*lift ratio*). Reconstructions are shown with that window boxed, and the table says
  whether it sits where the probe's patch does.

Findings (thresholds in ``[attacks.shortcut]``, ``audit schema shortcut``):

* **high**: a patch of at most ``max_area_fraction`` (2%) of the image pulls at least ``pull_high``
  (50%) of other classes' clean images to one class;
* **medium**: the strongest patch pulls at least ``pull_medium`` (35%; clean MNIST models measured 0.10 to 0.30),
  or a high pull needs a larger patch;
* **info**: otherwise ("no small patch controls any class": only square patches on the grid at the
  tried intensities were searched).

Measured (tests/test_shortcut.py, MNIST, MLP 3 epochs on 2,000 images): a model trained with a
3×3 positional shortcut is flagged high (max pull 0.98, 9 classes ≥ 50%) with the patch found within
one grid cell for all 10 classes; the same MLP trained on clean images gets an info finding (max pull
0.25). ``bench/bench_shortcut.py`` repeats this for MLP, CNN, ViT and ViT without positional
embedding: planted models pull 0.97 to 1.0, clean ones 0.10 to 0.30. ViTs react to the patch's offset
inside any 7×7 token, so for them several grid spots hijack a class and the strongest is often not the
planted one (found for 1 of 10 classes) although the finding is high.

Study mode (``audit study shortcut --dataset mnist [--quick] [--out DIR]``; ``--help`` lists the
options): builds a shortcut dataset, trains MLP, CNN, ViT and ViT without positional embedding at
several learning rates, tests each on test sets with, without and with conflicting shortcuts, probes
each model, and inverts one model per architecture. See ``docs/shortcut.md``.
"""
from __future__ import annotations

from auditor import hookimpl
from auditor.lab import Study
from auditor_shortcut.attack import ShortcutConfig, ShortcutProbe

__all__ = ["ShortcutConfig", "ShortcutProbe"]


def _study_main(argv: list[str]) -> int:
    from auditor_shortcut.study import study_main

    return study_main(argv)


@hookimpl
def auditor_register_attacks():
    return [ShortcutProbe]


@hookimpl
def auditor_register_studies():
    return [Study(name="shortcut", summary="Shortcut reliance of MLP, CNN and ViT (with/without positional embedding) "
                                           "across learning rates: accuracy with vs without a planted patch shortcut.",
                  main=_study_main)]
