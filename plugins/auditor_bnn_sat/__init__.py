"""bnn_sat: exact inversion of binarised neural networks (BNNs) with a SAT solver.

What it does: recognises a BNN (±1 or ternary weights, sign activations, batch norm, input
binarisation inside the network) in a torch module or an ONNX graph, folds batch norm and biases
into exact integer thresholds, encodes every hidden neuron as a reified cardinality constraint
``y <=> sum(literals) >= D`` and the output argmax (``torch.argmax`` tie-breaking) under
per-class selector assumptions, and asks an incremental SAT solver, class by class, for inputs the
network maps to that class. Each preimage is checked by a forward pass of the model. A class with
no input at all is reported as proven unreachable (UNSAT); one the solver could not decide within
the time limit as timeout. Models that are not binarised are skipped with the reason.

Paper: "Network Inversion of Binarised Neural Nets" (encode the BNN in CNF, invert each label by
SAT); encodings after Narodytska et al. (AAAI'18) and NPAQ; notes in docs/bnn_sat.md.

Requirements: the model's parameters (``Capability.PARAMETERS``: a torch ``nn.Sequential`` BNN
or an ONNX graph of MatMul/Gemm, BatchNormalization, Add/Sub/Mul/Div and Sign nodes) and
``python-sat``. A BNN to audit: ``python -m auditor_bnn_sat.train --arch 784-100-10 --out DIR``.

Config fields (``BnnSatInversion.Config``): ``per_class`` (preimages per class), ``classes``,
``time_limit_s`` (per class; the solver is interrupted), ``solver`` (``mc`` MiniCard; ``gc3``/
``gc4``/``cd195`` run in a killed-at-the-limit child process; CNF-only solvers such as ``g4``),
``encoding`` (``native`` | ``cnf`` | ``hybrid``), ``cnf_max_cells``, ``strategy`` (``direct`` |
``decompose``), ``phases`` (``relax`` data-free | ``seed`` from a reference image | ``random`` |
``none``), ``conflict_budget`` (restarts), ``diverse``, ``hamming`` (stay within d bits of the
seed image: a robustness check), ``check_samples``.
"""
from auditor import hookimpl
from auditor_bnn_sat.attack import BnnSatInversion


@hookimpl
def auditor_register_attacks():
    return [BnnSatInversion]
