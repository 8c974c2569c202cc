"""ONNX files on disk: parameter counts and external-data references, checked before anything reads them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from auditor.core.errors import ModelLoadError


def parameter_count(model_proto) -> int:
    total = 0
    for init in model_proto.graph.initializer:
        total += int(np.prod(list(init.dims), dtype=np.int64)) if init.dims else 1
    return total


def all_tensors(model_proto):
    """Every TensorProto that can hold external data: initializers, sparse initializers and node
    attributes, in the main graph, in subgraphs (If/Loop/Scan bodies) and in local functions."""

    def of_sparse(sparse):
        yield sparse.values
        yield sparse.indices

    def of_node(node):
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

    def of_graph(graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from of_sparse(sparse)
        for node in graph.node:
            yield from of_node(node)

    yield from of_graph(model_proto.graph)
    for function in model_proto.functions:
        for node in function.node:
            yield from of_node(node)


def external_data_paths(model_proto) -> list[str]:
    """Locations named by external-data tensors."""
    locations = []
    for init in all_tensors(model_proto):
        if init.data_location == 1:  # TensorProto.EXTERNAL
            for entry in init.external_data:
                if entry.key == "location":
                    locations.append(entry.value)
    return locations


def check_external_data(model_path: Path, model_proto) -> None:
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
