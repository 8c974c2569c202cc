"""QONNX (Brevitas / FINN) graphs lowered to standard ONNX ops that onnxruntime runs.

qonnx's own cleanup (``qonnx.util.cleanup.cleanup_model``) folds the quantisers that act on
constants (the weights) into plain initializers, with qonnx's reference executor. The quantisers
left on activations are lowered here, with QONNX's semantics:

* ``BipolarQuant(x, s)`` is ``s`` where ``x >= 0`` (−0.0 included) and ``−s`` elsewhere: it becomes
  ``GreaterOrEqual`` + ``Where`` (never ``Sign``, which maps 0 to 0).
* ``Quant(x, s, z, b)`` (``IntQuant`` in qonnx 1.x) is ``(round(clip(x / s + z, min, max)) − z) · s``; a signed 1-bit ``Quant``
  is bipolar, as in qonnx.
"""
from __future__ import annotations

import logging

import numpy as np

from auditor.core.errors import ModelLoadError

log = logging.getLogger(__name__)

QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general", "finn")
_LOWERED = ("Quant", "IntQuant", "BipolarQuant")  # IntQuant: qonnx 1.x's name for Quant
_ROUNDING = {"ROUND": "Round", "HALF_EVEN": "Round", "FLOOR": "Floor", "CEIL": "Ceil"}


def is_qonnx(proto) -> bool:
    return any(n.domain in QONNX_DOMAINS or n.op_type in (*_LOWERED, "Trunc", "MultiThreshold") and n.domain
               for n in proto.graph.node)


def _fold_weight_quantisers(proto):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    try:
        return cleanup_model(ModelWrapper(proto), preserve_qnt_ops=False).model
    except Exception as exc:  # qonnx raises many types on graphs it cannot clean
        raise ModelLoadError(f"qonnx could not clean up the QONNX graph: {type(exc).__name__}: {str(exc)[:300]}") from exc


class _Lowering:
    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.count = 0

    def const(self, value: float | np.ndarray, hint: str) -> str:
        from onnx import numpy_helper

        self.count += 1
        name = f"{hint}__lowered{self.count}"
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name=name))
        return name

    def node(self, op: str, inputs: list[str], hint: str) -> tuple[object, str]:
        from onnx import helper

        self.count += 1
        out = f"{hint}__{op.lower()}{self.count}"
        return helper.make_node(op, inputs, [out], name=out), out

    def value(self, name: str, what: str, node) -> np.ndarray:
        if name not in self.consts:
            raise ModelLoadError(f"{node.op_type} {node.name!r}: its {what} is computed at run time; only constant {what}s can be lowered")
        return self.consts[name]

    def bipolar(self, x: str, hint: str) -> tuple[list, str]:
        ge, cond = self.node("GreaterOrEqual", [x, self.const(0.0, hint)], hint)
        where, out = self.node("Where", [cond, self.const(1.0, hint), self.const(-1.0, hint)], hint)
        return [ge, where], out

    def lower(self, node) -> list:
        """Standard nodes computing ``node``; the last one writes ``node.output[0]``."""
        from onnx import helper

        hint = node.name or node.output[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        nodes: list = []
        if node.op_type == "BipolarQuant":
            nodes, y = self.bipolar(node.input[0], hint)
            scale = self.value(node.input[1], "scale", node)
            if not np.all(scale == 1.0):
                mul, y = self.node("Mul", [y, node.input[1]], hint)
                nodes.append(mul)
        else:
            scale = self.value(node.input[1], "scale", node)
            zero = self.value(node.input[2], "zero point", node)
            bits = float(np.asarray(self.value(node.input[3], "bit width", node)).reshape(-1)[0])
            signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
            mode = attrs.get("rounding_mode", "ROUND")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            if mode.upper() not in _ROUNDING:
                raise ModelLoadError(f"Quant {node.name!r} uses rounding mode {mode!r}; lowered modes are {sorted(_ROUNDING)}")
            div, y = self.node("Div", [node.input[0], node.input[1]], hint)
            nodes.append(div)
            if np.any(zero != 0):
                add, y = self.node("Add", [y, node.input[2]], hint)
                nodes.append(add)
            if bits == 1 and signed:
                more, y = self.bipolar(y, hint)
                nodes += more
            else:
                b = int(bits)
                low = -(2 ** (b - 1)) + (1 if narrow else 0) if signed else 0
                high = 2 ** (b - 1) - 1 if signed else 2 ** b - 1 - (1 if narrow else 0)
                upper, y = self.node("Min", [y, self.const(float(high), hint)], hint)
                lower, y = self.node("Max", [y, self.const(float(low), hint)], hint)
                rnd, y = self.node(_ROUNDING[mode.upper()], [y], hint)
                nodes += [upper, lower, rnd]
            if np.any(zero != 0):
                sub, y = self.node("Sub", [y, node.input[2]], hint)
                nodes.append(sub)
            mul, y = self.node("Mul", [y, node.input[1]], hint)
            nodes.append(mul)
        nodes[-1].output[0] = node.output[0]
        return nodes


def lower_qonnx(proto):
    """(standard-ONNX proto, notes). Raises :class:`ModelLoadError` for QONNX ops it cannot lower."""
    from onnx import helper

    cleaned = _fold_weight_quantisers(proto)
    graph = cleaned.graph
    leftover = sorted({n.op_type for n in graph.node if n.domain and n.op_type not in _LOWERED})
    if leftover:
        raise ModelLoadError(f"QONNX ops {leftover} are not supported (lowered: {list(_LOWERED)}); "
                             "export the model before FINN streamlining")
    lowering = _Lowering(graph)
    counts: dict[str, int] = {}
    new_nodes = []
    for node in graph.node:
        if node.op_type in _LOWERED and node.domain:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            new_nodes += lowering.lower(node)
        else:
            new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.value_info[:]
    opsets = [o for o in cleaned.opset_import if o.domain not in QONNX_DOMAINS]
    default = next((o for o in opsets if o.domain in ("", "ai.onnx")), None)
    if default is None:
        opsets.append(helper.make_opsetid("", 12))
    elif default.version < 12:  # GreaterOrEqual needs opset 12; 11 -> 12 changes no op used by such graphs
        default.version = 12
    del cleaned.opset_import[:]
    cleaned.opset_import.extend(opsets)
    lowered = ", ".join(f"{n} × {op}" for op, n in sorted(counts.items()))
    notes = ["QONNX graph: qonnx's cleanup folded the weight quantisers into constants"
             + (f"; lowered to GreaterOrEqual/Where and standard arithmetic: {lowered}" if lowered else "")]
    return cleaned, notes
