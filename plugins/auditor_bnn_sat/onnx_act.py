"""ONNX activations of binarised networks besides ``Sign``, for :func:`~auditor_bnn_sat.extract.stages_from_onnx`.

``GreaterOrEqual(v, c)`` followed by ``Where(cond, a, -a)`` -- the form ``BipolarQuant`` is lowered to
(:mod:`auditor.models.qonnx_lower`) -- is the activation that maps ``v >= c`` (``v == c`` and -0.0 included) to
+1: Stage.act ``"ge0"``. The threshold ``c`` becomes the op ``v - c`` before it; the scale ``a`` (and a
``Mul`` by a constant after it) is folded into the next linear map's columns.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditor_bnn_sat.extract import not_bnn

if TYPE_CHECKING:
    from auditor_bnn_sat.extract import Stage

COMPARE = ("GreaterOrEqual", "LessOrEqual")


def apply_compare(node, cur: str, other: list[np.ndarray], st: Stage) -> None:
    """``v >= c`` (or ``c <= v``) is ``v - c >= 0`` exactly in IEEE floats (``v - c`` is 0 only when
    ``v == c``, and rounding keeps its sign): the threshold becomes an op; ``c >= v`` becomes ``c - v``."""
    c = other[0].astype(np.float32)
    data_left = node.input[0] == cur
    if (node.op_type == "GreaterOrEqual") == data_left:
        if np.any(c != 0):
            st.ops.append(lambda v, c=c: (v - c).astype(np.float32))
    else:
        st.ops.append(lambda v, c=c: (c - v).astype(np.float32))
    st.pending = f"{node.op_type} {node.name or node.output[0]}"


def apply_where(node, cur: str, consts: dict, st: Stage) -> None:
    """``Where(v >= 0, a, -a)`` is ``a`` times the activation that maps 0 (and -0.0) to +1."""
    if node.op_type != "Where" or len(node.input) != 3 or node.input[0] != cur:
        raise not_bnn(f"{st.pending} is followed by {node.op_type} ({node.name or node.output[0]}); expected Where(cond, +a, -a)")
    a, b = (np.asarray(consts[i], dtype=np.float32) for i in node.input[1:])
    if not (np.array_equal(*np.broadcast_arrays(a, -b)) and np.all(a != 0)):
        raise not_bnn(f"Where {node.name or node.output[0]} selects {a.ravel()[:4].tolist()} / {b.ravel()[:4].tolist()}: expected +a / -a with a != 0")
    st.act, st.pending = "ge0", None
    if np.any(a != 1):
        st.out_scale = a.astype(np.float64)


def after_activation(node, attrs: dict, cur: str, other: list[np.ndarray], st: Stage) -> None:
    """Between an activation and the next linear map: scales (folded into that map), flattens, no-ops."""
    op = node.op_type
    if op in ("Identity", "Dropout") or (op == "Cast" and attrs.get("to", 1) == 1):
        return
    if op in ("Flatten", "Reshape") and (len(other[0]) == 2 if op == "Reshape" else attrs.get("axis", 1) == 1):
        st.ops.append(lambda v: v.reshape(v.shape[0], -1))  # elementwise activations commute with a flatten
        return
    if op == "Mul" and np.all(other[0] != 0):
        scale = np.asarray(other[0], dtype=np.float64)
        st.out_scale = scale if st.out_scale is None else st.out_scale * scale
        return
    raise not_bnn(f"{op} {node.name} follows a sign activation; expected MatMul or Gemm (or a Mul by a constant)")


def column_scale(scale: np.ndarray, n_in: int, node) -> np.ndarray:
    """The activation scale as one factor per input of the next linear map (a scalar, or one per element)."""
    if scale.size == 1:
        return np.full(n_in, float(scale.reshape(-1)[0]))
    if scale.size == n_in:
        return scale.reshape(-1)
    raise not_bnn(f"the activation scale before {node.op_type} {node.name} has shape {list(scale.shape)}, "
                  f"which does not fold into its {n_in} inputs")
