"""``kkt``: reconstruct training images from the trained weights' stationarity (KKT) conditions.

A network trained to convergence by gradient methods sits near a stationary point of its training problem, so
its weights are (nearly) a combination of per-example gradients: theta ~ sum_i lambda_i grad_theta g_i(x_i).
The attack optimises m candidates with fixed balanced labels, and their coefficients lambda, to minimise the
(per-layer normalised) residual sum_l ||theta_l - grad_theta_l (1/m) sum_i f_i||^2, with f_i the lambda-weighted
multiclass margin (``form="margin"``) or the negative cross-entropy (``form="loss"``, weight decay), plus an
input-range prior and 5 ||relu(lambda_min - lambda)||^2. The network's nn.ReLU modules are swapped (in a copy)
for a ReLU whose derivative is sigmoid(alpha z). Candidates live in the network's own input space (after
its preprocessing) and are mapped back to [0, 1] pixels for the core's scoring. Candidates that explain a
real share of the weights are handed to scoring. Haim et al. 2022; Buzaglo et al. 2023. Details and
requirements on the model: docs/kkt.md. Options: ``audit schema kkt``.
"""
from auditor import hookimpl
from auditor_kkt.attack import KktReconstruction


@hookimpl
def auditor_register_attacks():
    return [KktReconstruction]
