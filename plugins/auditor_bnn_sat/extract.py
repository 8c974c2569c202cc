"""Recognise a BNN in a torch module or an ONNX graph and fold it into integer thresholds.

Both front ends reduce a model to *stages*: a linear map (or none, for the input) followed by
elementwise float operations and a sign. :func:`fold_stages` then evaluates those operations
on every integer pre-activation a neuron can reach -- with the model's own float ops, so the
thresholds agree with the forward pass -- and checks that each neuron is a monotone threshold
function. A model that does not fit raises :class:`~auditor.core.errors.CapabilityError` whose
message starts with ``"not a binarised network: "``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from auditor import CapabilityError
from auditor_bnn_sat.bnn import BinaryLinear, InputBinarizer, SignActivation

log = logging.getLogger(__name__)

Op = Callable[[np.ndarray], np.ndarray]


def not_bnn(reason: str) -> CapabilityError:
    return CapabilityError(f"not a binarised network: {reason}")


@dataclass
class Stage:
    """A linear map (``weight`` [out, in], None for the input stage), float ops, then an activation."""

    weight: np.ndarray | None
    ops: list[Op] = field(default_factory=list)
    act: str | None = None  # "sign" (0 -> 0), "ge0" (0 -> +1), None: logits
    inexact: list[str] = field(default_factory=list)
    out_scale: np.ndarray | None = None  # the activation is ±out_scale: folded into the next linear map's columns
    pending: str | None = None  # a comparison (ONNX GreaterOrEqual) waiting for its Where


# --------------------------------------------------------------------------- torch front end


def _bias_exact(bias: np.ndarray) -> bool:
    """True when adding ``bias`` to integer sums (|sum| < 2**16) is exact in float32 in any order."""
    b = np.asarray(bias, dtype=np.float64)
    return bool(np.all(b * 64 == np.round(b * 64)) and np.abs(b).max(initial=0) < 2**16)


def _torch_op(module: nn.Module) -> Op:
    def op(v: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))).numpy()
    return op


def _leaves(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def stages_from_torch(net: nn.Module, input_shape: tuple[int, ...] | None = None) -> list[Stage]:
    """Stages of an ``nn.Sequential`` BNN; any other module is exported to ONNX (with an input of
    ``input_shape``, else the module's ``input_shape`` attribute) and parsed."""
    if not isinstance(net, nn.Sequential):
        return stages_from_onnx(_export_onnx(net, input_shape), type(net).__name__)
    if not any(isinstance(leaf, (InputBinarizer, SignActivation)) for leaf in _leaves(net)):
        layers = list(dict.fromkeys(type(leaf).__name__ for leaf in _leaves(net)))
        raise not_bnn(f"{type(net).__name__} has no sign activation (its layers: {', '.join(layers)}); "
                      "bnn_sat applies only to binarised networks")
    if net.training:
        raise not_bnn("the module is in training mode (batch norm would use batch statistics); call .eval()")
    stages = [Stage(None)]
    for leaf in _leaves(net):
        cur = stages[-1]
        if isinstance(leaf, (nn.Identity, nn.Dropout)):
            continue
        if isinstance(leaf, nn.Linear):
            if cur.act is None and cur.weight is not None:
                raise not_bnn(f"two linear layers without a sign between them ({leaf})")
            if cur.weight is None and cur.act is None:
                raise not_bnn("the input is not binarised before the first linear layer")
            if isinstance(leaf, BinaryLinear):
                w, b = leaf.binary_weight(), leaf.quantised_bias()
            else:
                w, b = leaf.weight.detach(), None if leaf.bias is None else leaf.bias.detach()
            stage = Stage(w.double().cpu().numpy())
            if b is not None:
                bias = b.float().cpu().numpy()
                stage.ops.append(lambda v, bias=bias: (v + bias).astype(np.float32))
                if not _bias_exact(bias):
                    stage.inexact.append("linear bias added inside the matrix product may round")
            stages.append(stage)
            continue
        if cur.act is not None:
            raise not_bnn(f"layer {type(leaf).__name__} follows a sign activation; expected a linear layer")
        if isinstance(leaf, InputBinarizer):
            thr = leaf.threshold.detach().float().cpu().numpy()
            cur.ops.append(lambda v, thr=thr: (v - thr).astype(np.float32))
            cur.act = "sign"
        elif isinstance(leaf, SignActivation):
            cur.act = leaf.mode
        elif isinstance(leaf, (nn.Flatten, nn.BatchNorm1d)):
            if isinstance(leaf, nn.BatchNorm1d) and leaf.training:
                raise not_bnn("batch norm in training mode")
            cur.ops.append(_torch_op(leaf))
        else:
            raise not_bnn(f"unsupported layer {type(leaf).__name__} (expected Linear, BatchNorm1d, sign activations, Flatten)")
    return stages


def _export_onnx(net: nn.Module, input_shape: tuple[int, ...] | None = None):  # -> onnx.ModelProto
    import io

    import onnx

    shape = input_shape or getattr(net, "input_shape", None)
    if shape is None:
        raise ValueError(f"the input shape of {type(net).__name__} is needed to export it (pass input_shape)")
    buf = io.BytesIO()
    try:
        torch.onnx.export(net.eval(), (torch.rand(2, *shape),), buf, dynamo=False)
    except Exception as exc:  # exporter failures are varied
        raise not_bnn(f"cannot trace {type(net).__name__} to inspect it: {exc}") from exc
    return onnx.load_from_string(buf.getvalue())


# --------------------------------------------------------------------------- ONNX front end


def _bn_op(scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) -> Op:
    def op(v: np.ndarray) -> np.ndarray:
        shape = [1, -1] + [1] * (v.ndim - 2)
        def r(a):
            return a.astype(np.float32).reshape(shape)
        return ((v - r(mean)) / np.sqrt(r(var) + np.float32(eps)) * r(scale) + r(bias)).astype(np.float32)
    return op


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def _fold_const(node, args: list[np.ndarray], attrs: dict) -> np.ndarray:
    op = node.op_type
    if op in ("Identity", "Cast"):
        return args[0] if op == "Identity" else args[0].astype(np.float32 if attrs.get("to", 1) == 1 else args[0].dtype)
    if op in _BINARY:
        return _BINARY[op](args[0], args[1])
    simple = {"Sign": np.sign, "Neg": np.negative, "Sqrt": np.sqrt, "Abs": np.abs}
    if op in simple:
        return simple[op](args[0])
    if op == "Transpose":
        return np.transpose(args[0], attrs.get("perm"))
    if op == "Reshape":
        return args[0].reshape(args[1].astype(np.int64))
    if op in ("Unsqueeze", "Squeeze"):
        axes = attrs.get("axes") if len(args) < 2 else args[1].tolist()
        return np.expand_dims(args[0], axes) if op == "Unsqueeze" else np.squeeze(args[0], tuple(axes) if axes else None)
    raise not_bnn(f"cannot evaluate constant ONNX node {op} ({node.name})")


def stages_from_onnx(model, name: str = "the ONNX graph") -> list[Stage]:  # model: onnx.ModelProto
    """Parse a chain-shaped ONNX graph into stages."""
    from onnx import helper, numpy_helper

    from auditor_bnn_sat.onnx_act import COMPARE

    graph = model.graph
    if not any(node.op_type in ("Sign", *COMPARE) for node in graph.node):
        ops = list(dict.fromkeys(node.op_type for node in graph.node if node.op_type != "Constant"))
        raise not_bnn(f"{name} has no sign activation (its operations: {', '.join(ops[:12])}{', ...' if len(ops) > 12 else ''}); "
                      "bnn_sat applies only to binarised networks")
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise not_bnn(f"expected one graph input, got {inputs}")
    cur, stages = inputs[0], [Stage(None)]
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        ins = [i for i in node.input if i]
        if all(i in consts for i in ins):
            consts[node.output[0]] = _fold_const(node, [consts[i] for i in ins], attrs)
            continue
        if cur not in ins or any(i != cur and i not in consts for i in ins):
            raise not_bnn(f"the graph is not a chain: node {node.op_type} ({node.name}) reads {ins}")
        _apply_onnx_node(node, attrs, cur, consts, stages)
        cur = node.output[0]
    if stages[-1].pending is not None:
        raise not_bnn(f"{stages[-1].pending} is not followed by Where(cond, +a, -a)")
    if [o.name for o in graph.output] != [cur]:
        raise not_bnn(f"the graph output {[o.name for o in graph.output]} is not the end of the chain {cur}")
    return stages


def _apply_onnx_node(node, attrs: dict, cur: str, consts: dict, stages: list[Stage]) -> None:
    from auditor_bnn_sat.onnx_act import (
        COMPARE,
        after_activation,
        apply_compare,
        apply_where,
        column_scale,
    )

    op, st = node.op_type, stages[-1]
    other = [consts[i] for i in node.input if i and i != cur]
    if op in ("MatMul", "Gemm"):
        if op == "MatMul":
            if node.input[0] != cur:
                raise not_bnn(f"MatMul {node.name} multiplies a constant by the data")
            w, bias, alpha, beta = other[0].T, None, 1.0, 1.0
        else:
            if attrs.get("transA", 0):
                raise not_bnn(f"Gemm {node.name} transposes the data")
            b = other[0]
            w = b if attrs.get("transB", 0) else b.T
            bias = other[1] if len(other) > 1 else None
            alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if st.act is None:
            raise not_bnn(f"{op} {node.name} is not preceded by a sign activation")
        w = np.asarray(w, dtype=np.float64) * alpha
        if st.out_scale is not None:  # activation ±a times W: the same map as ±1 times W·a (column-wise)
            w = w * column_scale(st.out_scale, w.shape[1], node)
        stage = Stage(w)
        if bias is not None:
            bb = (np.asarray(bias, dtype=np.float32) * np.float32(beta)).astype(np.float32)
            stage.ops.append(lambda v, bb=bb: (v + bb).astype(np.float32))
            if not _bias_exact(bb):
                stage.inexact.append(f"{op} bias added inside the matrix product may round")
        stages.append(stage)
        return
    if st.pending is not None:
        apply_where(node, cur, consts, st)
        return
    if st.act is not None:
        after_activation(node, attrs, cur, other, st)
        return
    if op == "Sign":
        st.act = "sign"
    elif op in COMPARE:
        apply_compare(node, cur, other, st)
    elif op in ("Identity", "Dropout") or (op == "Cast" and attrs.get("to", 1) == 1):
        pass
    elif op in ("Flatten", "Reshape"):
        if op == "Flatten" and attrs.get("axis", 1) != 1:
            raise not_bnn(f"Flatten {node.name} with axis {attrs.get('axis')}")
        if op == "Reshape" and len(other[0]) != 2:
            raise not_bnn(f"Reshape {node.name} to {other[0].tolist()} is not a flatten")
        st.ops.append(lambda v: v.reshape(v.shape[0], -1))
    elif op in _BINARY:
        c = other[0].astype(np.float32)
        fn = _BINARY[op]
        if node.input[0] == cur:
            st.ops.append(lambda v, c=c, fn=fn: fn(v, c).astype(np.float32))
        else:
            st.ops.append(lambda v, c=c, fn=fn: fn(c, v).astype(np.float32))
    elif op == "Neg":
        st.ops.append(lambda v: (-v).astype(np.float32))
    elif op == "BatchNormalization":
        st.ops.append(_bn_op(*other[:4], float(attrs.get("epsilon", 1e-5))))
    elif op in ("Softmax", "LogSoftmax") and st.weight is not None:
        st.inexact.append(f"{op} after the logits (argmax ties may differ within float rounding)")
    else:
        raise not_bnn(f"unsupported ONNX op {op} ({node.name}); expected Sign or GreaterOrEqual+Where, MatMul/Gemm, "
                      "BatchNormalization, Add/Sub/Mul/Div, Flatten")

