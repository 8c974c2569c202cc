"""Load an ONNX file: identify it, lower QONNX, pick the class-score output, read logits before a final
Softmax, free a fixed batch dimension, then hand the graph to :class:`~auditor.models.onnx_model.OnnxClassifier`."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from auditor.core.errors import ModelLoadError
from auditor.core.results import ModelInfo
from auditor.models.model import ModelSpec
from auditor.models.onnx_graph import (
    GraphEdits,
    expose_logits,
    graph_inputs,
    inference_form,
    make_batch_symbolic,
    select_output,
)

log = logging.getLogger(__name__)

_REFUSALS = {
    "pickle": "a Python pickle (loading it would run code from the file)",
    "torch zip pickle": "a PyTorch checkpoint saved with torch.save (a zip of pickles)",
    "torch.export archive": "a torch.export archive",
    "safetensors": "a safetensors weights file",
}
_HINTS = {
    "torch zip pickle": "pass it as --weights with timm:ARCH or factory:module:function, or pickle:PATH --trust-model for a "
                        "full-module pickle you trust",
    "pickle": "pickle:PATH --trust-model loads a full-module pickle you trust",
    "torch.export archive": "rename it to .pt2 or pass export:PATH",
    "safetensors": "pass it as --weights with timm:ARCH or factory:module:function",
}


def _session(proto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def refuse_if_not_onnx(path: Path) -> None:
    """A file named .onnx that is something else is named and refused, never unpickled."""
    from auditor.models.sniff import identify, looks_like_onnx

    kind = identify(path)
    if kind == "unknown" and looks_like_onnx(path):
        return
    if kind != "unknown":
        what = _REFUSALS.get(kind, f"a {kind} file")
        hint = _HINTS.get(kind, "export the model to ONNX first")
        raise ModelLoadError(f"{path} is {what}, not an ONNX model, although its name ends in .onnx; refused: {hint}")


def _probe_outputs(proto, input_shape_guess: list[int]) -> list[tuple[str, list[int]]]:
    session = _session(proto)
    meta = session.get_inputs()[0]
    dtype = np.float16 if "float16" in meta.type else np.float32
    x = np.random.default_rng(0).random(input_shape_guess).astype(dtype)
    outs = session.run(None, {meta.name: x})
    return [(o.name, list(np.shape(v))) for o, v in zip(session.get_outputs(), outs)]


def _probe_shape(proto, spec: ModelSpec) -> list[int]:
    from auditor.models.onnx_model import _static_dims, infer_layout

    dims = _static_dims(graph_inputs(proto)[0])
    layout = infer_layout(dims, spec)
    batch = dims[0] or 2
    c, h, w = layout.input_shape
    if layout.target is not None:
        return [batch, *layout.target]
    return [batch, h, w, c] if layout.channels_last else [batch, c, h, w]


def _free_batch(proto, spec: ModelSpec, edits: GraphEdits):
    """(proto, session, chunk): the batch made symbolic when that agrees with the original graph run at its
    fixed size; otherwise the original graph, run in chunks of that size."""
    from auditor.models.onnx_model import _static_dims, fixed_chunks

    fixed = _static_dims(graph_inputs(proto)[0])[0]
    original = _session(proto)
    if not fixed:
        return proto, original, None
    edited = make_batch_symbolic(proto, fixed, edits)
    shape = _probe_shape(proto, spec)
    x = np.random.default_rng(1).random([2 * fixed + 1, *shape[1:]]).astype(np.float32)
    name = original.get_inputs()[0].name
    try:
        expected = np.concatenate([original.run(None, {name: c})[0] for c in fixed_chunks(x, fixed)])[: len(x)]
        session = _session(edited)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        agree = got.shape == expected.shape and np.allclose(got, expected, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expected).max())))
    except Exception as exc:  # noqa: BLE001 - onnxruntime refuses the edited graph
        agree, why = False, f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        why = "its outputs differ from the original graph's"
    if agree:
        edits.notes[-1] += f" (checked against the original graph run {fixed} image(s) at a time)"
        return edited, session, None
    edits.notes[-1] = (f"the graph fixes the batch at {fixed} and cannot be edited safely ({why}); "
                       f"it runs {fixed} image(s) at a time")
    return proto, original, fixed


def load_onnx(path: Path, spec: ModelSpec):
    import onnx

    from auditor.models.onnx_files import (
        all_tensors,
        check_external_data,
        parameter_count,
    )
    from auditor.models.onnx_model import OnnxClassifier
    from auditor.models.provenance import file_provenance
    from auditor.models.qonnx_lower import QONNX_DOMAINS, is_qonnx, lower_qonnx

    provenance = file_provenance(path)
    refuse_if_not_onnx(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelLoadError(f"{path} is not a valid ONNX protobuf: {type(exc).__name__}: {exc}") from exc
    if not proto.graph.node:
        raise ModelLoadError(f"{path}: the ONNX graph has no nodes (corrupt or not an ONNX model)")
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    known = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft", *QONNX_DOMAINS)
    custom = sorted({o.domain for o in proto.opset_import if o.domain not in known})
    info = ModelInfo(source=spec.source, format="onnx", opset=opset, producer=f"{proto.producer_name} {proto.producer_version}".strip(),
                     metadata={p.key: p.value for p in proto.metadata_props}, parameter_count=parameter_count(proto),
                     **provenance)  # type: ignore[arg-type]
    if custom:
        raise ModelLoadError(f"{path} uses operators from custom domains {custom}, which onnxruntime cannot run here")
    inputs = graph_inputs(proto)
    if len(inputs) != 1:
        raise ModelLoadError(f"expected exactly one graph input (the image batch), got {len(inputs)}: {[i.name for i in inputs]}")
    check_external_data(path, proto)
    try:
        onnx.load_external_data_for_model(proto, str(path.resolve().parent))
    except Exception as exc:
        raise ModelLoadError(f"cannot read external data of {path}: {exc}") from exc
    left = sorted({t.name for t in all_tensors(proto) if t.data_location == 1})
    if left:  # onnx does not load these (sparse tensors); onnxruntime would resolve them against the working directory
        raise ModelLoadError(f"{path}: external data of tensors {left[:10]} is not supported (sparse tensors); refused")
    edits = GraphEdits()
    if is_qonnx(proto):
        proto, notes = lower_qonnx(proto)
        edits.notes += notes
        info = info.model_copy(update={"format": "qonnx (lowered to onnx)"})
    try:
        if len(proto.graph.output) > 1 or spec.output_name is not None:
            candidates = _probe_outputs(proto, _probe_shape(proto, spec))
            proto = select_output(proto, candidates, expected_classes=spec.expected_classes, output_name=spec.output_name, edits=edits)
        if spec.outputs in ("auto", "probabilities"):
            proto = expose_logits(proto, edits)
        proto = inference_form(proto, edits)
        proto, session, chunk = _free_batch(proto, spec, edits)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"onnxruntime cannot load {path}: {type(exc).__name__}: {str(exc)[:500]}") from exc
    info = info.model_copy(update={"graph_edits": edits.notes})
    for note in edits.notes:
        log.info("%s: %s", path.name, note)
    if edits.logits_from_softmax:
        spec = spec.model_copy(update={"outputs": "logits"})
    return OnnxClassifier(proto, session, spec, info, chunk=chunk)
