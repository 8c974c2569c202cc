"""What a loaded model can do; attacks declare which capabilities they need."""
from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """What a loaded model can do; attacks declare which they need."""

    QUERY = "query"            # logits for inputs (every model)
    GRADIENTS = "gradients"    # autograd w.r.t. the input pixels
    PARAMETERS = "parameters"  # read the weights (torch parameters or ONNX initializers)
