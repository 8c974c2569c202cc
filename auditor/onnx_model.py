"""ONNX classifiers: onnxruntime answers queries, onnx2pytorch provides gradients.

At load time the converted torch module and onnxruntime run on the same seeded batch;
when conversion fails or they differ by more than ``parity_tolerance`` of the largest
logit, the model keeps only the query and parameter capabilities and says why.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from auditor.attack import Capability
from auditor.errors import ModelLoadError
from auditor.model import Classifier, LogProbabilities, ModelSpec, Preprocess, looks_like_probabilities
from auditor.results import ModelInfo

log = logging.getLogger(__name__)

MAX_INPUT_ELEMENTS = 3 * 512 * 512


def _static_dims(value_info) -> list[int | None]:  # noqa: ANN001 - onnx ValueInfoProto
    dims: list[int | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else None)
    return dims


def infer_layout(dims: list[int | None], spec: ModelSpec) -> tuple[bool, tuple[int, int, int]]:
    """Return (channels_last, (C, H, W)) from the graph input's declared dims and the spec."""
    if len(dims) != 4:
        raise ModelLoadError(f"expected one 4-D image input [N,C,H,W] or [N,H,W,C], the graph declares {len(dims)} dims {dims}")
    body = dims[1:]
    if spec.layout == "NHWC" or (spec.layout == "auto" and body[2] in (1, 3) and body[0] not in (1, 3)):
        channels_last, chw = True, (body[2], body[0], body[1])
    else:
        channels_last, chw = False, (body[0], body[1], body[2])
    if spec.input_shape is not None:
        chw = tuple(spec.input_shape)  # type: ignore[assignment]
    if any(d is None for d in chw):
        raise ModelLoadError(f"the graph input has dynamic image dims {dims}; pass --input-shape C,H,W")
    if any(d <= 0 for d in chw) or int(np.prod(chw)) > MAX_INPUT_ELEMENTS:  # type: ignore[arg-type]
        raise ModelLoadError(f"absurd input shape {list(chw)} (C,H,W): expected positive dims, at most {MAX_INPUT_ELEMENTS} elements")
    if chw[0] not in (1, 3):
        raise ModelLoadError(f"expected 1 or 3 input channels, got {chw[0]} (input dims {dims}); pass --layout if the channel axis was misread")
    return channels_last, chw  # type: ignore[return-value]


class OnnxClassifier(Classifier):
    """An ONNX image classifier."""

    def __init__(self, model_proto, session, spec: ModelSpec, info: ModelInfo) -> None:  # noqa: ANN001
        self.onnx_model = model_proto
        self._session = session
        inputs, outputs = session.get_inputs(), session.get_outputs()
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name
        self._input_dtype = np.float16 if "float16" in inputs[0].type else np.float32
        graph_input = next(i for i in model_proto.graph.input if i.name == self._input_name)
        self.channels_last, self.input_shape = infer_layout(_static_dims(graph_input), spec)
        self._preprocess = Preprocess(spec.input_range, spec.mean, spec.std, self.channels_last)
        probe = torch.rand((2, *self.input_shape), generator=torch.Generator().manual_seed(0))
        raw = self._run(probe)
        if raw.ndim != 2:
            raise ModelLoadError(f"expected a [N, classes] output, got shape {list(raw.shape)}")
        self.num_classes = spec.num_classes or int(raw.shape[1])
        if raw.shape[1] != self.num_classes:
            raise ModelLoadError(f"the model outputs {raw.shape[1]} scores but {self.num_classes} classes were declared")
        if self.num_classes < 2:
            raise ModelLoadError(f"a classifier needs at least 2 classes, the model outputs {self.num_classes}")
        if spec.outputs == "auto":
            batch = torch.rand((16, *self.input_shape), generator=torch.Generator().manual_seed(1))
            self.probabilities = looks_like_probabilities(self._run(batch))
        else:
            self.probabilities = spec.outputs == "probabilities"
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
            "num_classes": self.num_classes, "input_shape": list(self.input_shape),
            "layout": "NHWC" if self.channels_last else "NCHW", "input_range": list(spec.input_range),
            "mean": list(spec.mean) if spec.mean else None, "std": list(spec.std) if spec.std else None,
            "outputs_probabilities": self.probabilities, "capabilities": sorted(c.value for c in self.capabilities),
            "parity_max_abs_diff": parity, "parity_tolerance": spec.parity_tolerance,
            "gradients_unavailable_reason": reason, "warnings": warnings_,
        })

    # -- queries through onnxruntime (the reference)
    def _run(self, images: torch.Tensor) -> torch.Tensor:
        x = self._preprocess(images.detach().float().cpu()).numpy().astype(self._input_dtype)
        try:
            out = self._session.run([self._output_name], {self._input_name: x})[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"onnxruntime failed on an input of shape {list(x.shape)}: {exc}") from exc
        try:
            return torch.from_numpy(np.asarray(out, dtype=np.float32))
        except (TypeError, ValueError) as exc:  # sequence or map outputs (e.g. ZipMap), strings
            raise ModelLoadError(f"the model's output {self._output_name!r} is not a numeric tensor of class scores "
                                 f"({type(out).__name__}): {str(exc)[:200]}") from exc

    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        parts = [self._run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        out = torch.cat(parts) if parts else torch.empty(0, self.num_classes)
        return torch.log(out.clamp_min(1e-12)) if self.probabilities else out

    # -- gradients through onnx2pytorch
    def _convert(self, spec: ModelSpec) -> tuple[float | None, str | None]:
        try:
            from onnx2pytorch import ConvertModel

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = ConvertModel(self.onnx_model, experimental=True).eval()
        except Exception as exc:  # converter raises many types for unsupported graphs
            reason = f"onnx2pytorch conversion failed: {type(exc).__name__}: {exc}"
            log.warning("%s; gradients unavailable, queries still work", reason)
            return None, reason
        for p in net.parameters():
            p.requires_grad_(False)
        layers: list[nn.Module] = [self._preprocess, net]
        if self.probabilities:
            layers.append(LogProbabilities())
        module = nn.Sequential(*layers).eval()
        batch = torch.rand((8, *self.input_shape), generator=torch.Generator().manual_seed(2))
        try:
            with torch.no_grad():
                converted = module(batch).float()
        except Exception as exc:
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


def parameter_count(model_proto) -> int:  # noqa: ANN001
    total = 0
    for init in model_proto.graph.initializer:
        total += int(np.prod(list(init.dims), dtype=np.int64)) if init.dims else 1
    return total


def all_tensors(model_proto):  # noqa: ANN001, ANN201
    """Every TensorProto that can hold external data: initializers, sparse initializers and node
    attributes, in the main graph, in subgraphs (If/Loop/Scan bodies) and in local functions."""

    def of_sparse(sparse):  # noqa: ANN001, ANN202
        yield sparse.values
        yield sparse.indices

    def of_node(node):  # noqa: ANN001, ANN202
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield from of_sparse(attribute.sparse_tensor)
            for sparse in attribute.sparse_tensors:
                yield from of_sparse(sparse)
            if attribute.HasField("g"):
                yield from of_graph(attribute.g)
            for graph in attribute.graphs:
                yield from of_graph(graph)

    def of_graph(graph):  # noqa: ANN001, ANN202
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from of_sparse(sparse)
        for node in graph.node:
            yield from of_node(node)

    yield from of_graph(model_proto.graph)
    for function in model_proto.functions:
        for node in function.node:
            yield from of_node(node)


def external_data_paths(model_proto) -> list[str]:  # noqa: ANN001
    """Locations named by external-data tensors."""
    locations = []
    for init in all_tensors(model_proto):
        if init.data_location == 1:  # TensorProto.EXTERNAL
            for entry in init.external_data:
                if entry.key == "location":
                    locations.append(entry.value)
    return locations


def check_external_data(model_path: Path, model_proto) -> None:  # noqa: ANN001
    """Refuse external-data references that leave the model's folder or are missing or short.

    Every tensor is checked (initializers, sparse initializers, node attributes, subgraphs and
    functions), before anything reads external data.
    """
    folder = model_path.resolve().parent
    for init in all_tensors(model_proto):
        if init.data_location != 1:
            continue
        entries = {e.key: e.value for e in init.external_data}
        location = entries.get("location", "")
        if not location or "\0" in location:
            raise ModelLoadError(f"external data location {location!r} of tensor {init.name!r} is empty or invalid; refused")
        candidate = Path(location)
        if candidate.is_absolute() or ".." in candidate.parts or "\\" in location:
            raise ModelLoadError(f"external data {location!r} of tensor {init.name!r} points outside the model's folder; refused")
        target = folder / candidate
        try:
            if target.is_symlink():
                raise ModelLoadError(f"external data {location!r} is a symbolic link; refused")
            resolved = target.resolve()
            if folder not in resolved.parents:
                raise ModelLoadError(f"external data {location!r} resolves outside the model's folder; refused")
            if not resolved.is_file():
                raise ModelLoadError(f"external data file {location!r} named by tensor {init.name!r} is missing next to {model_path.name}")
            size = resolved.stat().st_size
        except OSError as exc:  # name too long, permission denied, symlink loop, ...
            raise ModelLoadError(f"cannot check external data {location!r} of tensor {init.name!r}: {exc}") from exc
        try:
            offset, length = int(entries.get("offset", 0) or 0), entries.get("length")
            length = None if length is None else int(length)
        except ValueError as exc:
            raise ModelLoadError(f"external data of tensor {init.name!r} has a non-numeric offset or length: {exc}") from exc
        if offset < 0 or (length is not None and length < 0):
            raise ModelLoadError(f"external data of tensor {init.name!r} has a negative offset or length")
        if offset > size or (length is not None and offset + length > size):
            raise ModelLoadError(f"external data file {location!r} is {size} bytes; tensor {init.name!r} needs bytes "
                                 f"{offset}..{offset + (length or 0)}")
