"""ONNX classifiers: onnxruntime answers queries, onnx2pytorch provides gradients.

At load time the converted torch module and onnxruntime run on the same seeded batch;
when conversion fails or they differ by more than ``parity_tolerance`` of the largest
logit, the model keeps only the query and parameter capabilities and says why.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from auditor.core.capabilities import Capability
from auditor.core.errors import ModelLoadError
from auditor.core.results import ModelInfo
from auditor.models.model import (
    Classifier,
    LogProbabilities,
    ModelSpec,
    Preprocess,
    output_kind,
)

log = logging.getLogger(__name__)

MAX_INPUT_ELEMENTS = 3 * 512 * 512


def _static_dims(value_info) -> list[int | None]:
    dims: list[int | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else None)
    return dims


def square_image_shape(size: int) -> tuple[int, int, int] | None:
    """(C, H, W) with C in (1, 3) and H = W for a flat input of ``size`` values, when there is one."""
    for channels in (1, 3):
        side = int(round((size / channels) ** 0.5))
        if size % channels == 0 and side * side * channels == size:
            return channels, side, side
    return None


@dataclass(frozen=True)
class InputLayout:
    """How an image batch [N, C, H, W] becomes the graph's input."""

    channels_last: bool
    input_shape: tuple[int, int, int]
    target: tuple[int, ...] | None = None  # per-example shape when the graph does not take 4-D images
    both_layouts: bool = False             # both NCHW and NHWC fit the declared dims (the preflight chooses)


def infer_layout(dims: list[int | None], spec: ModelSpec) -> InputLayout:
    """Read the graph input's declared dims: [N,C,H,W], [N,H,W,C], [N,H,W], [N,D] or [N,D,1]."""
    body = dims[1:]
    hint = spec.input_shape or spec.data_image_shape
    if len(dims) == 4:
        nhwc_fits, nchw_fits = body[2] in (1, 3), body[0] in (1, 3)
        channels_last = spec.layout == "NHWC" or (spec.layout == "auto" and nhwc_fits and not nchw_fits)
        chw = (body[2], body[0], body[1]) if channels_last else (body[0], body[1], body[2])
        if spec.input_shape is not None:
            chw = tuple(spec.input_shape)  # type: ignore[assignment]
        elif any(d is None for d in chw) and hint is not None:
            chw = tuple(h if d is None else d for d, h in zip(chw, hint))  # type: ignore[assignment]
        layout = InputLayout(channels_last, chw, None, spec.layout == "auto" and nhwc_fits and nchw_fits)  # type: ignore[arg-type]
    elif len(dims) in (2, 3):
        flat = len(dims) == 2 or body[1] == 1
        if flat:
            size = body[0]
            chw = spec.input_shape or (hint if hint and size and hint[0] * hint[1] * hint[2] == size else None) \
                or (square_image_shape(size) if size else None)
            if chw is None:
                raise ModelLoadError(f"the graph takes flat vectors {dims}; pass --input-shape C,H,W for its {size or 'unknown'} values")
            target: tuple[int, ...] = (size,) if len(dims) == 2 else (size, 1)
        else:
            if body[0] is None or body[1] is None:
                raise ModelLoadError(f"the graph input {dims} has dynamic image dims; pass --input-shape 1,H,W")
            chw, target = (1, body[0], body[1]), (body[0], body[1])
        if int(np.prod(chw)) != int(np.prod(target)):
            raise ModelLoadError(f"--input-shape {list(chw)} has {int(np.prod(chw))} values; the graph input {dims} takes {int(np.prod(target))}")
        channels_last = spec.layout == "NHWC"
        layout = InputLayout(channels_last, tuple(chw), target, spec.layout == "auto" and chw[0] > 1 and flat)  # type: ignore[arg-type]
    else:
        raise ModelLoadError(f"expected an image input [N,C,H,W], [N,H,W,C], [N,H,W], [N,D] or [N,D,1]; the graph declares {len(dims)} dims {dims}")
    chw = layout.input_shape
    if any(d is None for d in chw):
        raise ModelLoadError(f"the graph input has dynamic image dims {dims}; pass --input-shape C,H,W")
    if any(d <= 0 for d in chw) or int(np.prod(chw)) > MAX_INPUT_ELEMENTS:
        raise ModelLoadError(f"absurd input shape {list(chw)} (C,H,W): expected positive dims, at most {MAX_INPUT_ELEMENTS} elements")
    if chw[0] not in (1, 3):
        raise ModelLoadError(f"expected 1 or 3 input channels, got {chw[0]} (input dims {dims}); pass --layout if the channel axis was misread")
    return layout


class FixedBatch(nn.Module):
    """Runs a module whose graph fixes the batch size in chunks of that size (the last chunk padded)."""

    def __init__(self, net: nn.Module, batch: int) -> None:
        super().__init__()
        self.net, self.batch = net, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(chunk) for chunk in fixed_chunks(x, self.batch)])[: len(x)]


def fixed_chunks(x, batch: int):
    """Chunks of exactly ``batch`` rows; the last is padded by repeating its final row (cut off afterwards)."""
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        if len(chunk) < batch:
            pad = chunk[-1:].repeat(batch - len(chunk), *([1] * (chunk.ndim - 1))) if isinstance(chunk, torch.Tensor) \
                else np.repeat(chunk[-1:], batch - len(chunk), axis=0)
            chunk = torch.cat([chunk, pad]) if isinstance(chunk, torch.Tensor) else np.concatenate([chunk, pad])
        yield chunk


class OnnxClassifier(Classifier):
    """An ONNX image classifier. ``chunk`` is the graph's fixed batch size when it could not be made symbolic."""

    def __init__(self, model_proto, session, spec: ModelSpec, info: ModelInfo, *, chunk: int | None = None) -> None:
        self.onnx_model = model_proto
        self._session = session
        self._chunk = chunk
        inputs, outputs = session.get_inputs(), session.get_outputs()
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name
        self._input_dtype = np.float16 if "float16" in inputs[0].type else np.float32
        graph_input = next(i for i in model_proto.graph.input if i.name == self._input_name)
        self.layout = infer_layout(_static_dims(graph_input), spec)
        self.channels_last, self.input_shape = self.layout.channels_last, self.layout.input_shape
        self._preprocess = Preprocess(spec.input_range, spec.mean, spec.std, self.channels_last, self.layout.target)
        probe = torch.rand((2, *self.input_shape), generator=torch.Generator().manual_seed(0))
        raw = self._run(probe)
        if raw.ndim != 2:
            raise ModelLoadError(f"expected a [N, classes] output, got shape {list(raw.shape)}")
        self.num_classes = spec.num_classes or int(raw.shape[1])
        if raw.shape[1] != self.num_classes:
            raise ModelLoadError(f"the model outputs {raw.shape[1]} scores but {self.num_classes} classes were declared")
        if self.num_classes < 2:
            raise ModelLoadError(f"a classifier needs at least 2 classes, the model outputs {self.num_classes}")
        batch = torch.rand((16, *self.input_shape), generator=torch.Generator().manual_seed(1))
        self.outputs_kind = output_kind(spec.outputs, self._run(batch))
        self.probabilities = self.outputs_kind == "probabilities"
        self._module: nn.Module | None = None
        self._net: nn.Module | None = None
        capabilities = {Capability.QUERY, Capability.PARAMETERS}
        parity, reason = self._convert(spec)
        if reason is None:
            capabilities.add(Capability.GRADIENTS)
        self.capabilities = frozenset(capabilities)
        warnings_ = list(info.warnings)
        if self.probabilities:
            warnings_.append("outputs are probabilities; attacks see their logarithm as logits")
        self.info = info.model_copy(update={
            "num_classes": self.num_classes, "input_shape": list(self.input_shape), **self._preprocess.describe(),
            "outputs_probabilities": self.probabilities, "outputs_kind": self.outputs_kind,
            "capabilities": sorted(c.value for c in self.capabilities),
            "parity_max_abs_diff": parity, "parity_tolerance": spec.parity_tolerance,
            "gradients_unavailable_reason": reason, "warnings": warnings_,
        })

    # -- queries through onnxruntime (the reference)
    def _run(self, images: torch.Tensor) -> torch.Tensor:
        x = self._preprocess(images.detach().float().cpu()).numpy().astype(self._input_dtype)
        chunks = [x] if self._chunk is None else list(fixed_chunks(x, self._chunk))
        try:
            outs = [self._session.run([self._output_name], {self._input_name: c})[0] for c in chunks]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"onnxruntime failed on an input of shape {list(chunks[0].shape)}: {exc}") from exc
        try:
            out = np.concatenate([np.asarray(o, dtype=np.float32) for o in outs])[: len(x)]
        except (TypeError, ValueError) as exc:  # sequence or map outputs (e.g. ZipMap), strings
            raise ModelLoadError(f"the model's output {self._output_name!r} is not a numeric tensor of class scores "
                                 f"({type(outs[0]).__name__}): {str(exc)[:200]}") from exc
        return torch.from_numpy(out)

    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        parts = [self._run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        out = torch.cat(parts) if parts else torch.empty(0, self.num_classes)
        return torch.log(out.clamp_min(1e-30)) if self.probabilities else out

    # -- gradients through onnx2pytorch
    def _convert(self, spec: ModelSpec) -> tuple[float | None, str | None]:
        try:
            import onnx
            from onnx2pytorch import ConvertModel

            source = onnx.ModelProto()
            source.CopyFrom(self.onnx_model)  # ConvertModel edits the graph in place (it drops an Add after a MatMul)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = ConvertModel(source, experimental=True).eval()
        except Exception as exc:  # noqa: BLE001 - converter raises many types for unsupported graphs
            reason = f"onnx2pytorch conversion failed: {type(exc).__name__}: {exc}"
            log.warning("%s; gradients unavailable, queries still work", reason)
            return None, reason
        for p in net.parameters():
            p.requires_grad_(False)
        if self._chunk is not None:
            net = FixedBatch(net, self._chunk)
        layers: list[nn.Module] = [self._preprocess, net]
        if self.probabilities:
            layers.append(LogProbabilities())
        module = nn.Sequential(*layers).eval()
        batch = torch.rand((8, *self.input_shape), generator=torch.Generator().manual_seed(2))
        try:
            with torch.no_grad():
                converted = module(batch).float()
        except Exception as exc:  # noqa: BLE001 - a converted module that fails on real inputs loses gradients; queries still work
            reason = f"converted module failed to run: {type(exc).__name__}: {exc}"
            return None, reason
        reference = self.logits(batch)
        if converted.shape != reference.shape:
            return None, f"converted module outputs {list(converted.shape)}, onnxruntime {list(reference.shape)}"
        diff = float((converted - reference).abs().max())
        allowed = spec.parity_tolerance * max(float(reference.abs().max()), 1e-6)
        if not np.isfinite(diff) or diff > allowed:
            return diff, f"parity check failed: max |onnxruntime - converted| = {diff:.3g} > {allowed:.3g} ({spec.parity_tolerance:g} of the largest logit)"
        self._module, self._net = module, net
        return diff, None

    def module(self) -> nn.Module:
        if self._module is None:
            return super().module()
        return self._module

    def network(self) -> nn.Module | None:
        return self._net

    def initializers(self) -> dict[str, np.ndarray]:
        """The graph's weights, read directly (the parameters capability)."""
        from onnx import numpy_helper

        return {init.name: numpy_helper.to_array(init) for init in self.onnx_model.graph.initializer}
