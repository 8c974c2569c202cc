"""Fold parsed stages into a :class:`BinaryNetwork` with exact integer thresholds.

Entry point: :func:`extract_network`, for a :class:`~auditor.models.model.Classifier`, a torch
module or an ONNX ``ModelProto``.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from auditor import Capability, CapabilityError
from auditor_bnn_sat.extract import (
    Op,
    Stage,
    not_bnn,
    stages_from_onnx,
    stages_from_torch,
)
from auditor_bnn_sat.network import BinaryLayer, BinaryNetwork, OutputLayer

log = logging.getLogger(__name__)

def _row_scales(weight: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Split ``weight`` into per-row scale ``a > 0`` and a ternary matrix in {-1, 0, 1}."""
    mag = np.abs(weight)
    scale = mag.max(1)
    scale[scale == 0] = 1.0
    tern = weight / scale[:, None]
    bad = ~np.isin(tern, (-1.0, 0.0, 1.0))
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        values = np.unique(weight[row])[:4]
        raise not_bnn(f"{what} row {row} has weights {values.tolist()}...: expected ±a (or 0) per row")
    return scale, tern.astype(np.int8)


def _grid(n: int, scale: np.ndarray) -> np.ndarray:
    z = np.arange(-n, n + 1, dtype=np.float64)[:, None]
    return (z * scale[None, :]).astype(np.float32)


def _apply(ops: list[Op], v: np.ndarray) -> np.ndarray:
    for op in ops:
        v = op(v)
    return np.asarray(v, dtype=np.float32)


def fold_hidden(stage: Stage, index: int) -> tuple[BinaryLayer, list[str]]:
    """Integer thresholds of one hidden stage, by evaluating its ops on every reachable pre-activation."""
    scale, w = _row_scales(stage.weight, f"hidden layer {index}")
    notes = list(stage.inexact)
    if not all(math.frexp(float(s))[0] == 0.5 for s in scale):
        notes.append(f"layer {index}: weight scales are not powers of two; float sums may round")
    n = int(np.abs(w).sum(1).max()) if w.size else 0
    values = _apply(stage.ops, _grid(n, scale))  # [2n+1, out]; row k is z = k - n
    nnz = np.abs(w).sum(1).astype(np.int64)
    thresholds = np.empty(len(nnz), dtype=np.int64)
    close = 0
    for j in range(len(nnz)):
        zs = np.arange(-nnz[j], nnz[j] + 1, 2)
        v = values[zs + n, j]
        if stage.act == "sign" and (v == 0).any():
            raise not_bnn(f"neuron {j} of layer {index} outputs sign(0) = 0 at pre-activation {int(zs[v == 0][0])}")
        on = v >= 0
        if np.all(on[1:] >= on[:-1]):      # increasing: fires from the first 'on'
            thresholds[j] = zs[on.argmax()] if on.any() else nnz[j] + 2
        elif np.all(on[1:] <= on[:-1]):    # decreasing: fires up to the last 'on' -> negate the row
            w[j] = -w[j]
            last = zs[on][-1]
            thresholds[j] = -last
        else:
            raise not_bnn(f"neuron {j} of layer {index} is not a threshold function of its sum")
        if np.abs(v).min() < 1e-6 * max(float(np.abs(v).max()), 1e-30):
            close += 1
    if close:
        notes.append(f"layer {index}: {close} neurons come within float rounding of 0 at a reachable sum")
    return BinaryLayer(w, thresholds), notes


def fold_output(stage: Stage) -> tuple[OutputLayer, list[str]]:
    """Logits ``a * z + b`` with one slope ``a > 0`` for every class -> bias in units of ``z``."""
    scale, w = _row_scales(stage.weight, "output layer")
    n = max(int(np.abs(w).sum(1).max()), 1)
    values = _apply(stage.ops, _grid(n, scale)).astype(np.float64)  # [2n+1, K]
    z = np.arange(-n, n + 1, dtype=np.float64)
    bias = values[n]
    slope = (values[-1] - values[0]) / (2 * n)
    if (slope <= 0).any() or np.ptp(slope) > 1e-6 * slope.max():
        raise not_bnn(f"output slopes per class {np.round(slope, 6).tolist()}: argmax needs one positive scale")
    a = float(np.median(slope))
    fitted = a * z[:, None] + bias[None, :]
    if np.abs(values - fitted).max() > 1e-4 * max(1.0, np.abs(values).max()):
        raise not_bnn("the output is not an affine function of the last layer's sum")
    notes = list(stage.inexact)
    if not (np.array_equal(values, fitted) and math.frexp(a)[0] == 0.5):
        notes.append("output logits are not exact in float32; argmax ties may differ within rounding")
    return OutputLayer(w, bias / a), notes


def fold_input(stage: Stage, preprocess: nn.Module | None, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """How each input bit depends on one pixel, found by evaluating the model's own ops."""
    if stage.act is None:
        raise not_bnn("the input is not binarised (no sign before the first linear layer)")
    strict = stage.act == "sign"

    def pre_sign(images: torch.Tensor) -> np.ndarray:
        x = images.float().cpu()
        if preprocess is not None:
            with torch.no_grad():
                x = preprocess.cpu()(x)
        return _apply(stage.ops, x.numpy()).reshape(images.shape[0], -1)

    def binarize(images: torch.Tensor) -> np.ndarray:
        v = pre_sign(images)
        if strict and (v == 0).any():
            log.debug("%d input values sit exactly on the binarisation threshold; read as 0", int((v == 0).sum()))
        return (v > 0) if strict else (v >= 0)

    n_pix = int(np.prod(input_shape))
    v0 = pre_sign(torch.zeros(1, *input_shape))[0]
    v1 = pre_sign(torch.ones(1, *input_shape))[0]
    for value, v in ((0, v0), (1, v1)):
        if strict and (v == 0).any():
            raise not_bnn(f"input binarisation maps pixel value {value} to sign(0) = 0 at input {int(np.argmax(v == 0))}")
    n_in = v0.shape[0]
    pixel = np.full(n_in, -1, dtype=np.int64)
    for start in range(0, n_pix, 1024):
        basis = torch.zeros(min(1024, n_pix - start), n_pix)
        basis[torch.arange(basis.shape[0]), torch.arange(start, start + basis.shape[0])] = 1.0
        changed = pre_sign(basis.view(-1, *input_shape)) != v0[None, :]
        if (changed.sum(0) + (pixel >= 0) > 1).any():
            raise not_bnn("an input bit depends on more than one pixel (the binarisation is not elementwise)")
        rows = changed.argmax(0)
        hit = changed.any(0)
        pixel[hit] = rows[hit] + start
    b0 = (v0 > 0) if strict else (v0 >= 0)
    b1 = (v1 > 0) if strict else (v1 >= 0)
    free = (b0 != b1) & (pixel >= 0)
    if len(np.unique(pixel[free])) != int(free.sum()):
        raise not_bnn("one pixel feeds several input bits")
    const = np.where(free, -1, b0.astype(np.int8)).astype(np.int8)
    on = np.where(b1, 1.0, 0.0).astype(np.float32)
    threshold = None
    if (b1[free]).all():
        threshold = (-v0.astype(np.float64) / np.where(v1 != v0, v1.astype(np.float64) - v0, 1.0))
    return dict(in_pixel=np.where(pixel >= 0, pixel, 0), in_on=on, in_off=1.0 - on, in_const=const,
                binarize=binarize, in_threshold=threshold)


def build_network(stages: list[Stage], preprocess: nn.Module | None, input_shape: tuple[int, int, int],
                  source: str = "") -> BinaryNetwork:
    """Assemble the folded stages; checks the layer sizes chain."""
    if len(stages) < 2:
        raise not_bnn("no linear layer found")
    if stages[-1].act is not None:
        raise not_bnn("the network ends with a sign activation; expected logits")
    for i, st in enumerate(stages[1:-1], start=1):
        if st.act is None:
            raise not_bnn(f"linear layer {i} is not followed by a sign activation")
    inputs = fold_input(stages[0], preprocess, input_shape)
    notes: list[str] = []
    layers: list[BinaryLayer] = []
    width = len(inputs["in_pixel"])
    for i, st in enumerate(stages[1:-1]):
        if st.weight.shape[1] != width:
            raise not_bnn(f"layer {i} expects {st.weight.shape[1]} inputs, the previous layer gives {width}")
        layer, more = fold_hidden(st, i)
        layers.append(layer)
        notes += more
        width = st.weight.shape[0]
    if stages[-1].weight.shape[1] != width:
        raise not_bnn(f"output layer expects {stages[-1].weight.shape[1]} inputs, the previous layer gives {width}")
    output, more = fold_output(stages[-1])
    notes += more
    for note in notes:
        log.warning("bnn extraction: %s", note)
    return BinaryNetwork(input_shape=tuple(input_shape), layers=layers, output=output, notes=notes,
                         exact=not notes, source=source, **inputs)


def extract_network(model: Any, input_shape: tuple[int, int, int] | None = None) -> BinaryNetwork:
    """Recognise a BNN and return its exact integer form.

    Args:
        model: A :class:`~auditor.models.model.Classifier` (its ``onnx_model`` or ``network()``, with its
            preprocessing), a torch module, or an ``onnx.ModelProto``.
        input_shape: C, H, W; read from the classifier or the module's ``input_shape`` otherwise.

    Raises:
        CapabilityError: ``"not a binarised network: <reason>"``.
    """
    preprocess = None
    source = type(model).__name__
    if isinstance(model, nn.Module):
        stages = stages_from_torch(model)
        input_shape = input_shape or getattr(model, "input_shape", None)
    elif type(model).__name__ == "ModelProto":
        stages = stages_from_onnx(model)
    else:
        caps = getattr(model, "capabilities", frozenset())
        if Capability.PARAMETERS not in caps:
            raise CapabilityError("bnn_sat needs the model's parameters (torch module or ONNX graph)")
        input_shape = input_shape or tuple(model.input_shape)
        source = getattr(getattr(model, "info", None), "source", source)
        try:
            preprocess = model.preprocess
        except AttributeError:
            preprocess = None
        onnx_model = getattr(model, "onnx_model", None)
        if onnx_model is not None:
            stages = stages_from_onnx(onnx_model)
        else:
            net = model.network()
            if net is None:
                raise CapabilityError("bnn_sat needs the model's network (torch module or ONNX graph)")
            net_shape = input_shape  # the shape the bare network sees, after the classifier's preprocessing
            if preprocess is not None:
                with torch.no_grad():
                    net_shape = tuple(preprocess.cpu()(torch.zeros(1, *input_shape)).shape[1:])
            stages = stages_from_torch(net, net_shape)
    if input_shape is None:
        raise ValueError("input_shape is needed to extract a network without a classifier")
    return build_network(stages, preprocess, tuple(input_shape), source)
