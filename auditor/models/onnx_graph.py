"""Edits that make published ONNX files auditable, each recorded as a note for the report.

* :func:`select_output`: keep the one graph output that holds the class scores.
* :func:`expose_logits`: a graph that ends in Softmax is read at the tensor that feeds it.
* :func:`make_batch_symbolic`: a fixed batch dimension (``[1, C, H, W]``) becomes symbolic, and
  ``Reshape`` constants that bake the batch in (``view(x.size(0), -1)`` exported as ``[1, -1]``)
  are rewritten to copy the batch from their input (``[0, -1]``).

The functions never edit their argument: they return a new ``ModelProto``. Whether an edit is
right is checked by the caller against the original graph (see ``auditor.models.onnx_model``).
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np

from auditor.core.errors import ModelLoadError

log = logging.getLogger(__name__)

_PASS_THROUGH = ("Identity", "Dropout", "Cast")


@dataclass
class GraphEdits:
    """Notes about what was changed, for ``ModelInfo``."""

    notes: list[str] = field(default_factory=list)
    output_name: str | None = None
    logits_from_softmax: bool = False
    fixed_batch: int | None = None


def _dims(value_info) -> list[int | str | None]:
    out: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def graph_inputs(proto):
    """The graph inputs that are not initializers (old exporters list weights as inputs too)."""
    initializers = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in initializers]


def _producers(graph) -> dict[str, object]:
    return {out: node for node in graph.node for out in node.output}


def select_output(proto, candidates: list[tuple[str, list[int]]], *, expected_classes: int | None,
                  output_name: str | None, edits: GraphEdits):
    """Keep one output. ``candidates`` are (name, shape of a probe batch's result) for every output."""
    names = [name for name, _ in candidates]
    if output_name is not None:
        if output_name not in names:
            raise ModelLoadError(f"--output-name {output_name!r} is not a graph output; the graph has {names}")
        chosen = output_name
    elif len(candidates) == 1:
        chosen = names[0]
    else:
        two_d = [(n, s) for n, s in candidates if len(s) == 2 and s[1] >= 2]
        fitting = [n for n, s in two_d if expected_classes is not None and s[1] == expected_classes]
        if len(fitting) == 1:
            chosen = fitting[0]
        elif len(two_d) == 1 and expected_classes is None:
            chosen = two_d[0][0]
        else:
            listing = ", ".join(f"{n} {s}" for n, s in candidates)
            why = (f"{len(fitting)} of them are [N, {expected_classes}] (the data's class count)" if expected_classes
                   else "the data's class count is unknown")
            raise ModelLoadError(f"the graph has {len(candidates)} outputs ({listing}) and {why}; "
                                 "choose the class scores with --output-name NAME")
        edits.notes.append(f"the graph has {len(candidates)} outputs {names}; the class scores are read from {chosen!r}"
                           + ("" if output_name is None else " (--output-name)"))
    edits.output_name = chosen
    if len(names) == 1:
        return proto
    edited = copy.deepcopy(proto)
    keep = [o for o in edited.graph.output if o.name == chosen]
    del edited.graph.output[:]
    edited.graph.output.extend(keep)
    return edited


def expose_logits(proto, edits: GraphEdits):
    """Read a final ``Softmax`` (over the class axis of a 2-D tensor) at its input.

    The logarithm of probabilities loses every class whose probability underflows (its gradient
    is zero, and denormal floats are slow); the tensor that feeds the softmax holds the same
    ranking without that loss. Only Identity/Dropout/Cast may follow the softmax.
    """
    graph = proto.graph
    producers = _producers(graph)
    name = graph.output[0].name
    node = producers.get(name)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Softmax":
        return proto
    axis = next((a.i for a in node.attribute if a.name == "axis"), None)
    if axis not in (None, 1, -1):
        return proto
    edited = copy.deepcopy(proto)
    del edited.graph.output[:]
    from onnx import helper

    edited.graph.output.append(helper.make_empty_tensor_value_info(node.input[0]))
    edits.logits_from_softmax = True
    edits.output_name = node.input[0]
    edits.notes.append(f"the graph ends in Softmax ({node.name or 'unnamed'}); its input {node.input[0]!r} is read as the logits")
    return edited


def _constant_values(graph) -> dict[str, tuple[str, object]]:
    """name -> ('init', TensorProto) or ('node', Constant NodeProto) for constant tensors."""
    found: dict[str, tuple[str, object]] = {t.name: ("init", t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and any(a.name == "value" for a in node.attribute):
            found[node.output[0]] = ("node", node)
    return found


def make_batch_symbolic(proto, fixed_batch: int, edits: GraphEdits):
    """Symbolic batch on the input and outputs; ``Reshape`` shape constants led by the batch become 0 (copy it).

    Returns the edited graph. The caller must check it against the original graph, run
    ``fixed_batch`` images at a time, and fall back to chunks of the fixed size when they disagree.
    """
    from onnx import numpy_helper

    edited = copy.deepcopy(proto)
    graph = edited.graph
    for value_info in [*graph_inputs(edited), *graph.output]:
        dims = value_info.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "N"
    del graph.value_info[:]  # stale shapes would pin the batch again
    constants = _constant_values(graph)
    dynamic = {i.name for i in graph_inputs(edited)}  # tensors computed from the image batch
    rewritten = 0
    for node in graph.node:
        if any(i in dynamic for i in node.input):
            dynamic.update(node.output)
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants or node.input[0] not in dynamic:
            continue
        kind, holder = constants[node.input[1]]
        tensor = holder if kind == "init" else next(a.t for a in holder.attribute if a.name == "value")
        shape = numpy_helper.to_array(tensor).astype(np.int64)
        if shape.ndim != 1 or len(shape) < 2 or shape[0] != fixed_batch:
            continue
        if any(a.name == "allowzero" and a.i == 1 for a in node.attribute):
            continue
        users = sum(1 for n in graph.node for i in n.input if i == node.input[1])
        new = shape.copy()
        new[0] = 0
        replacement = numpy_helper.from_array(new, name=tensor.name)
        if users > 1:  # a shared constant: give this Reshape its own copy
            replacement.name = f"{node.input[1]}__batch{rewritten}"
            graph.initializer.append(replacement)
            node.input[1] = replacement.name
        else:
            tensor.CopyFrom(replacement)
        rewritten += 1
    edits.fixed_batch = fixed_batch
    edits.notes.append(f"the graph fixes the batch at {fixed_batch}; the batch was made symbolic"
                       + (f" and {rewritten} Reshape constant(s) that baked it in were rewritten" if rewritten else ""))
    return edited


def inference_form(proto, edits: GraphEdits):
    """The graph as it runs at inference, in the form the torch converter reads.

    ``Dropout`` in inference mode becomes ``Identity``, and ``BatchNormalization``'s ``training_mode = 0``
    attribute (its default, written by opset-14+ exporters) is dropped: onnx2pytorch reads neither, and
    neither changes what the graph computes.
    """
    from onnx import helper, numpy_helper

    constants = _constant_values(proto.graph)

    def inference(node) -> bool:
        if len(node.input) < 3 or not node.input[2]:
            return True
        kind, holder = constants.get(node.input[2], (None, None))
        if kind is None:
            return False
        tensor = holder if kind == "init" else next(a.t for a in holder.attribute if a.name == "value")
        return not bool(numpy_helper.to_array(tensor).any())

    dropouts = [i for i, n in enumerate(proto.graph.node) if n.op_type == "Dropout" and inference(n)]
    norms = [i for i, n in enumerate(proto.graph.node) if n.op_type == "BatchNormalization"
             and any(a.name == "training_mode" and a.i == 0 for a in n.attribute)]
    if not dropouts and not norms:
        return proto
    edited = copy.deepcopy(proto)
    used = {i for n in edited.graph.node for i in n.input} | {o.name for o in edited.graph.output}
    replaced = 0
    for index in dropouts:
        node = edited.graph.node[index]
        if len(node.output) > 1 and node.output[1] in used:
            continue  # the mask is read: keep the node
        edited.graph.node[index].CopyFrom(helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name))
        replaced += 1
    for index in norms:
        attributes = [a for a in edited.graph.node[index].attribute if a.name != "training_mode"]
        del edited.graph.node[index].attribute[:]
        edited.graph.node[index].attribute.extend(attributes)
    if replaced:
        edits.notes.append(f"{replaced} inference-mode Dropout node(s) read as Identity")
    return edited
