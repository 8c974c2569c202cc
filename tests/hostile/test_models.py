"""Hostile and broken model files through ``audit run``: exit 2, one clear line, no traceback, no read outside.

Each case builds its file in a tmp folder (``<tmp>/model/``); a canary file sits beside that folder
(``<tmp>/canary.bin``). Cases whose external data points at the canary or at /etc/passwd must fail
before ``onnx.load_external_data_for_model`` runs, and no Python ``open`` of those paths may happen.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

CANARY = b"CANARY: a file outside the model folder that must never be read"


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[SimpleNamespace], list]  # returns the arguments after "run"
    pattern: str                              # regex the one-line message must match
    code: int = 2
    external: bool = False                    # must fail before onnx reads any external data


# --------------------------------------------------------------------------- helpers


def _save(ctx: SimpleNamespace, proto, name: str = "model.onnx") -> Path:
    path = ctx.model_dir / name
    onnx.save(proto, str(path))
    return path


def _run(ctx: SimpleNamespace, proto, *extra: str) -> list:
    return [_save(ctx, proto), "--members", ctx.members, *extra]


def _externalize(tensor, location: str, **entries: str) -> None:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in {"location": location, **entries}.items():
        tensor.external_data.add(key=key, value=value)


def _with_external(ctx: SimpleNamespace, location: str, **entries: str) -> list:
    proto = ctx.onnx()
    _externalize(proto.graph.initializer[0], location, **entries)
    return _run(ctx, proto)


def _input_dims(ctx: SimpleNamespace, dims: list) -> list:
    proto = ctx.onnx(shape=tuple(d if isinstance(d, int) else 1 for d in dims[1:]), pool=True)
    shape = proto.graph.input[0].type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        if isinstance(d, str):
            shape.dim.add(dim_param=d)
        else:
            shape.dim.add(dim_value=d)
    return _run(ctx, proto)


def _extra_node(ctx: SimpleNamespace, *nodes, inits=(), output=None, opsets=(), **kw) -> list:
    return _run(ctx, ctx.onnx(extra_nodes=list(nodes), extra_initializers=list(inits), output=output,
                              extra_opsets=list(opsets)), *kw.get("extra", ()))


class _Evil:
    """Unpickling this writes a file: the proof that pickled code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes], add: dict | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            zout.writestr(info, edit(info.filename, zin.read(info.filename)))
        for name, data in (add or {}).items():
            zout.writestr(f"{root}/{name}", data)
    return dst


def _pt2_with_pickled_weight(ctx: SimpleNamespace) -> list:
    buffer = io.BytesIO()
    torch.save(_Evil(str(ctx.marker)), buffer)

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"]))
            config["config"][first]["use_pickle"] = True
            ctx.pickled_weight = config["config"][first]["path_name"]
            return json.dumps(config).encode()
        return data

    path = _rewrite_zip(ctx.pt2, ctx.model_dir / "evil.pt2", edit)
    path2 = _rewrite_zip(path, ctx.model_dir / "evil2.pt2",
                         lambda n, d: buffer.getvalue() if n.endswith(f"data/weights/{ctx.pickled_weight}") else d)
    return [path2, "--members", ctx.members, "--input-shape", "1,16,16"]


def _pt2_with_member(ctx: SimpleNamespace, member: str) -> list:
    path = _rewrite_zip(ctx.pt2, ctx.model_dir / "extra.pt2", lambda n, d: d, add={member: b"\x7fELF not really"})
    return [path, "--members", ctx.members, "--input-shape", "1,16,16"]


def _pt2_corrupt_member(ctx: SimpleNamespace) -> list:
    path = _rewrite_zip(ctx.pt2, ctx.model_dir / "bad.pt2", lambda n, d: d[:20] if n.endswith("sample_inputs/model.pt") else d)
    return [path, "--input-shape", "1,16,16", "--members", ctx.members]


def _factory_weights(ctx: SimpleNamespace, state: dict, suffix: str = ".safetensors") -> list:
    from safetensors.torch import save_file

    path = ctx.model_dir / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return ["factory:auditor.lab.testing:TinyNet", "--weights", path, "--input-shape", "1,16,16", "--members", ctx.members]


def _evil_pickle(ctx: SimpleNamespace, name: str = "model.pkl") -> Path:
    path = ctx.model_dir / name
    with path.open("wb") as fh:
        pickle.dump(_Evil(str(ctx.marker)), fh)
    return path


def _corrupt_safetensors(ctx: SimpleNamespace) -> list:
    args = _factory_weights(ctx, ctx.state)
    path = Path(args[2])
    raw = bytearray(path.read_bytes())
    raw[0:8] = (10**12).to_bytes(8, "little")  # header length far past the end of the file
    path.write_bytes(bytes(raw))
    return args


def _zipmap(ctx: SimpleNamespace) -> list:
    seq = helper.make_sequence_type_proto(helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))
    return _extra_node(ctx, helper.make_node("Softmax", ["g"], ["p"]),
                       helper.make_node("ZipMap", ["p"], ["logits"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]),
                       output=helper.make_value_info("logits", seq), opsets=[helper.make_opsetid("ai.onnx.ml", 3)])


def _two_inputs(ctx: SimpleNamespace, name: str = "second") -> list:
    proto = ctx.onnx()
    proto.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3]))
    return _run(ctx, proto)


def _two_outputs(ctx: SimpleNamespace) -> list:
    """Two [N, 3] outputs: the class scores cannot be told apart, so the file is refused with both listed."""
    proto = ctx.onnx()
    proto.graph.node.append(helper.make_node("Identity", ["logits"], ["copy"]))
    proto.graph.output.append(helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["N", 3]))
    return _run(ctx, proto)


def _external_in_constant(ctx: SimpleNamespace) -> list:
    value = numpy_helper.from_array(np.zeros(3, np.float32), "c")
    _externalize(value, "../canary.bin", offset="0", length="12")
    return _extra_node(ctx, helper.make_node("Constant", [], ["c"], value=value), helper.make_node("Add", ["g", "c"], ["logits"]))


def _external_in_subgraph(ctx: SimpleNamespace) -> list:
    secret = numpy_helper.from_array(np.zeros(3, np.float32), "secret")
    _externalize(secret, "../canary.bin", offset="0", length="12")
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])
    then_g = helper.make_graph([helper.make_node("Identity", ["secret"], ["b"])], "then", [], [branch_out], [secret])
    else_g = helper.make_graph([helper.make_node("Identity", ["B"], ["b"])], "else", [], [branch_out])
    cond = numpy_helper.from_array(np.array(True), "cond")
    return _extra_node(ctx, helper.make_node("If", ["cond"], ["iff"], then_branch=then_g, else_branch=else_g),
                       helper.make_node("Add", ["g", "iff"], ["logits"]), inits=[cond])


def _external_sparse(ctx: SimpleNamespace, location: str) -> list:
    proto = ctx.onnx(extra_nodes=[helper.make_node("Add", ["g", "sp"], ["logits"])])
    values = numpy_helper.from_array(np.zeros(1, np.float32), "sp_values")
    _externalize(values, location, offset="0", length="4")
    indices = numpy_helper.from_array(np.array([0], np.int64), "sp_indices")
    proto.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [3]))
    proto.graph.sparse_initializer[0].values.name = "sp"
    (ctx.model_dir / "inside.bin").write_bytes(b"\0" * 16)
    return _run(ctx, proto)


def _symlinked_file(ctx: SimpleNamespace) -> list:
    (ctx.model_dir / "weights.bin").symlink_to(ctx.canary)
    return _with_external(ctx, "weights.bin")


def _symlinked_dir(ctx: SimpleNamespace) -> list:
    (ctx.model_dir / "sub").symlink_to(ctx.canary.parent, target_is_directory=True)
    return _with_external(ctx, "sub/canary.bin")


def _short_external(ctx: SimpleNamespace) -> list:
    (ctx.model_dir / "weights.bin").write_bytes(b"\0" * 10)
    return _with_external(ctx, "weights.bin", offset="0", length=str(256 * 3 * 4))


def _valid_external(ctx: SimpleNamespace) -> list:
    proto = ctx.onnx()
    weight = proto.graph.initializer[0]
    (ctx.model_dir / "weights.bin").write_bytes(weight.raw_data)
    _externalize(weight, "weights.bin", offset="0", length=str(256 * 3 * 4))
    return [*_run(ctx, proto), "--dry-run"]


def _hostile_names(ctx: SimpleNamespace) -> list:
    return _two_inputs(ctx, name="line1\nline2\x1b[31m<b>red</b>\x07")


def _truncated(ctx: SimpleNamespace) -> list:
    raw = ctx.onnx().SerializeToString()
    path = ctx.model_dir / "model.onnx"
    path.write_bytes(raw[: len(raw) // 3])
    return [path, "--members", ctx.members]


def _random_bytes(ctx: SimpleNamespace) -> list:
    path = ctx.model_dir / "model.onnx"
    path.write_bytes(np.random.default_rng(8).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return [path, "--members", ctx.members]


def _raw_model(ctx: SimpleNamespace, name: str, data: bytes) -> Path:
    path = ctx.model_dir / name
    path.write_bytes(data)
    return path


def _empty_file(ctx: SimpleNamespace) -> list:
    path = ctx.model_dir / "model.onnx"
    path.write_bytes(b"")
    return [path, "--members", ctx.members]


def _directory(ctx: SimpleNamespace) -> list:
    path = ctx.model_dir / "folder.onnx"
    path.mkdir()
    return [path, "--members", ctx.members]


def _no_nodes(ctx: SimpleNamespace) -> list:
    proto = helper.make_model(helper.make_graph([], "empty", [], []))
    return _run(ctx, proto)


def _huge_initializer(ctx: SimpleNamespace) -> list:
    proto = ctx.onnx()
    proto.graph.initializer[0].dims[:] = [100000, 100000]
    return _run(ctx, proto)


def _huge_intermediate(ctx: SimpleNamespace) -> list:
    shape = numpy_helper.from_array(np.array([1_000_000, 1_000_000], np.int64), "shape")
    return _extra_node(ctx, helper.make_node("ConstantOfShape", ["shape"], ["big"]),
                       helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0), helper.make_node("Add", ["g", "s"], ["logits"]),
                       inits=[shape])


def _rank3_output(ctx: SimpleNamespace) -> list:
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    return _extra_node(ctx, helper.make_node("Unsqueeze", ["g", "axes"], ["logits"]), inits=[axes])


def _uint8_input(ctx: SimpleNamespace) -> list:
    proto = ctx.onnx()
    proto.graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    return _run(ctx, proto)


def _vector_input(ctx: SimpleNamespace) -> list:
    proto = helper.make_model(helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "B"], ["logits"])], "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 256])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(np.zeros((256, 3), np.float32), "W"), numpy_helper.from_array(np.zeros(3, np.float32), "B")]),
        opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return _run(ctx, proto)


# --------------------------------------------------------------------------- the cases

ONNX_CASES = [
    Case("onnx-random-bytes", _random_bytes, r"not a valid ONNX protobuf|graph has no nodes"),
    Case("onnx-truncated-protobuf", _truncated, r"not a valid ONNX protobuf|graph has no nodes"),
    Case("onnx-empty-file", _empty_file, r"model\.onnx is empty"),
    Case("onnx-path-is-a-folder", _directory, r"is not a regular file"),
    Case("onnx-file-name-with-newline-and-escapes", lambda c: [_raw_model(c, "evil\n\x1b[2J\x07.onnx", b""), "--members", c.members],
         r"model file .*/evil \\x1b\[2J\\x07\.onnx is empty$"),
    Case("onnx-missing-file", lambda c: [c.model_dir / "nope.onnx", "--members", c.members], r"nope\.onnx does not exist"),
    Case("onnx-graph-without-nodes", _no_nodes, r"graph has no nodes"),
    Case("onnx-input-dim-zero", lambda c: _input_dims(c, ["N", 1, 0, 16]), r"absurd input shape \[1, 0, 16\]"),
    Case("onnx-input-dim-negative", lambda c: _input_dims(c, ["N", 1, -16, 16]), r"absurd input shape \[1, -16, 16\]"),
    Case("onnx-input-billions-of-elements", lambda c: _input_dims(c, ["N", 3, 100000, 100000]),
         r"absurd input shape \[3, 100000, 100000\]"),
    # since issue 13, open image dims are read from the members' images, and flat [N, D] inputs are reshaped to them;
    # these models are untrained, so they now stop at the preflight (exit 2) instead of at the loader
    Case("onnx-input-dynamic-image-dims", lambda c: _input_dims(c, ["N", 1, "H", "W"]), r"preflight: the model classifies its members at"),
    Case("onnx-input-not-4d", _vector_input, r"preflight: the model classifies its members at"),
    Case("onnx-input-4-channels", lambda c: _input_dims(c, ["N", 4, 16, 16]), r"expected 1 or 3 input channels, got 4"),
    Case("onnx-input-uint8", _uint8_input, r"onnxruntime cannot load .*tensor\(uint8\)"),
    Case("flag-input-shape-billions", lambda c: [*_run(c, c.onnx()), "--input-shape", "3,100000,100000"],
         r"absurd input shape \[3, 100000, 100000\]"),
    Case("flag-input-shape-negative", lambda c: [*_run(c, c.onnx()), "--input-shape", "1,-16,16"], r"absurd input shape \[1, -16, 16\]"),
    Case("onnx-initializer-billions-of-elements", _huge_initializer, r"onnxruntime cannot load .*Dimension mismatch"),
    Case("onnx-intermediate-4TB-tensor", _huge_intermediate, r"onnxruntime failed on an input .*Failed to allocate memory"),
    Case("onnx-custom-domain-operator", lambda c: _extra_node(c, helper.make_node("Steal", ["g"], ["logits"], domain="com.evil"),
                                                              opsets=[helper.make_opsetid("com.evil", 1)]),
         r"custom domains \['com\.evil'\]"),
    Case("onnx-unknown-operator", lambda c: _extra_node(c, helper.make_node("NoSuchOp", ["g"], ["logits"])),
         r"onnxruntime cannot load .*No Op registered for NoSuchOp"),
    Case("onnx-two-inputs", _two_inputs, r"exactly one graph input .*got 2: \['x', 'second'\]"),
    Case("onnx-two-outputs-ambiguous", _two_outputs,
         r"the graph has 2 outputs \(logits \[2, 3\], copy \[2, 3\]\) and 2 of them are \[N, 3\].*--output-name"),
    Case("onnx-hostile-input-names", _hostile_names, r"exactly one graph input .*line1\\nline2\\x1b\[31m<b>red</b>\\x07"),
    Case("onnx-output-not-a-tensor-zipmap", _zipmap, r"output 'logits' is not a numeric tensor of class scores \(list\)"),
    Case("onnx-output-rank-3", _rank3_output, r"expected a \[N, classes\] output, got shape \[2, 3, 1\]"),
    Case("onnx-one-class", lambda c: _run(c, c.onnx(classes=1)), r"at least 2 classes, the model outputs 1"),
    Case("flag-num-classes-disagrees", lambda c: [*_run(c, c.onnx()), "--num-classes", "5"],
         r"outputs 3 scores but 5 classes were declared"),
    # external data
    Case("onnx-external-../../etc/passwd", lambda c: _with_external(c, "../../etc/passwd"),
         r"'\.\./\.\./etc/passwd' .*points outside", external=True),
    Case("onnx-external-../canary", lambda c: _with_external(c, "../canary.bin"), r"'\.\./canary\.bin' .*points outside", external=True),
    Case("onnx-external-absolute-path", lambda c: _with_external(c, "/etc/passwd"), r"'/etc/passwd' .*points outside", external=True),
    Case("onnx-external-backslash-path", lambda c: _with_external(c, "..\\canary.bin"), r"points outside", external=True),
    Case("onnx-external-symlinked-file", _symlinked_file, r"'weights\.bin' is a symbolic link; refused", external=True),
    Case("onnx-external-symlinked-folder", _symlinked_dir, r"'sub/canary\.bin' resolves outside the model's folder", external=True),
    Case("onnx-external-in-constant-node", _external_in_constant, r"'\.\./canary\.bin' of tensor 'c' points outside", external=True),
    Case("onnx-external-in-if-subgraph", _external_in_subgraph, r"'\.\./canary\.bin' of tensor 'secret' points outside", external=True),
    Case("onnx-external-sparse-outside", lambda c: _external_sparse(c, "../canary.bin"),
         r"'\.\./canary\.bin' .*points outside", external=True),
    Case("onnx-external-sparse-inside", lambda c: _external_sparse(c, "inside.bin"), r"external data of tensors \['sp'\] is not supported"),
    Case("onnx-external-missing-file", lambda c: _with_external(c, "weights.bin"),
         r"'weights\.bin' named by tensor 'W' is missing", external=True),
    Case("onnx-external-short-file", _short_external, r"'weights\.bin' is 10 bytes; tensor 'W' needs bytes 0\.\.3072", external=True),
    Case("onnx-external-non-numeric-offset", lambda c: (c.model_dir.joinpath("w.bin").write_bytes(b"\0" * 4096),
                                                          _with_external(c, "w.bin", offset="0x10; rm -rf"))[1],
         r"non-numeric offset or length", external=True),
    Case("onnx-external-empty-location", lambda c: _with_external(c, ""), r"location '' of tensor 'W' is empty or invalid", external=True),
    Case("onnx-external-valid-control", _valid_external, r"dry run", code=0),
]

TORCH_CASES = [
    Case("pickle-without-trust-model", lambda c: [f"pickle:{_evil_pickle(c)}", "--input-shape", "1,16,16", "--members", c.members],
         r"would be unpickled, which runs code from the file; refused"),
    Case("pickle-as-state-dict-weights", lambda c: ["factory:auditor.lab.testing:TinyNet", "--weights", _evil_pickle(c, "w.pt"),
                                                     "--input-shape", "1,16,16", "--members", c.members],
         r"not a plain state dict loadable with weights_only=True \(UnpicklingError: Unsupported (global|operand)"),
    Case("pickle-bare-path", lambda c: [_evil_pickle(c), "--members", c.members], r"holds weights or a pickle, not an architecture"),
    Case("pt2-pickled-weight", _pt2_with_pickled_weight, r"holds pickled Python objects .*refused .*io\.open"),
    Case("pt2-aotinductor-shared-library", lambda c: _pt2_with_member(c, "data/aotinductor/model/evil.so"),
         r"holds compiled code or pickled Python objects .*aotinductor"),
    Case("pt2-opaque-pickled-object", lambda c: _pt2_with_member(c, "data/constants/opaque_obj_0"),
         r"holds compiled code or pickled Python objects .*opaque_obj_0"),
    Case("pt2-corrupt-member", _pt2_corrupt_member,
         r"bad\.pt2 is not a torch\.export archive: RuntimeError: .*(PytorchStreamReader|zip)"),
    Case("pt2-not-a-zip", lambda c: (c.model_dir.joinpath("m.pt2").write_bytes(b"PK\x03\x04 garbage" * 50),
                                     [c.model_dir / "m.pt2", "--input-shape", "1,16,16", "--members", c.members])[1],
         r"m\.pt2 is not a torch\.export archive"),
    Case("safetensors-missing-and-unexpected-keys",
         lambda c: _factory_weights(c, {**{k: v for k, v in c.state.items() if not k.startswith("head.2")}, "extra.weight": torch.zeros(2)}),
         r"missing keys \['head\.2\.bias', 'head\.2\.weight'\]; unexpected keys \['extra\.weight'\]"),
    Case("safetensors-shape-mismatch", lambda c: _factory_weights(c, {**c.state, "head.2.weight": torch.zeros(5, 32)}),
         r"shape mismatches \['head\.2\.weight: model \[3, 32\] vs file \[5, 32\]'\]"),
    Case("safetensors-corrupt-header", _corrupt_safetensors, r"cannot read safetensors file"),
    Case("state-dict-not-a-dict", lambda c: _factory_weights(c, [torch.zeros(3)], suffix=".pt"), r"expected a dict of tensors .*got list"),
    Case("state-dict-wrong-architecture-channels", lambda c: [*_factory_weights(c, c.state)[:4], "3,16,16", "--members", c.members],
         r"forward pass on a \[4, 3, 16, 16\] batch failed"),
    Case("flag-input-shape-billions-torch", lambda c: ["factory:auditor.lab.testing:TinyNet", "--input-shape", "3,100000,100000", "--members", c.members],
         r"absurd input shape \[3, 100000, 100000\]"),
    Case("timm-unknown-architecture", lambda c: ["timm:no_such_net_v9", "--weights", _factory_weights(c, c.state)[2], "--members", c.members],
         r"unknown timm architecture 'no_such_net_v9'"),
]


@pytest.fixture
def ctx(tmp_path, members_npz, onnx_model, tiny_net):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    canary = tmp_path / "canary.bin"
    canary.write_bytes(CANARY)
    return SimpleNamespace(tmp=tmp_path, model_dir=model_dir, canary=canary, marker=tmp_path / "pwned", members=members_npz,
                           onnx=onnx_model, state={k: v.clone() for k, v in tiny_net.state_dict().items()}, pt2=None)


def _outside_reads(paths: list[str], ctx: SimpleNamespace) -> list[str]:
    bad = []
    for raw in paths:
        path = Path(raw).resolve() if raw else Path(raw)
        if path == Path("/etc/passwd") or path == ctx.canary.resolve() or (
                ctx.tmp in path.parents and ctx.model_dir.resolve() not in path.parents and path != ctx.model_dir.resolve()):
            bad.append(raw)
    return bad


def _check(case: Case, ctx: SimpleNamespace, cli, opened, corpus, monkeypatch, kind: str) -> None:
    external_loads: list = []
    real = onnx.load_external_data_for_model
    monkeypatch.setattr(onnx, "load_external_data_for_model", lambda *a, **k: (external_loads.append(a), real(*a, **k))[1])
    args = case.build(ctx)
    with opened() as paths:
        code, out, err = cli("run", *args)
    message = next((line for line in err.splitlines() if line.startswith("audit:")), out.strip().splitlines()[-1] if out.strip() else "")
    outside = _outside_reads(paths, ctx)
    corpus(kind, case.id, code, message, outside_reads=len(outside))
    assert code == case.code, (code, out, err)
    import re

    assert re.search(case.pattern, message), message
    assert not outside, f"read outside the model folder: {outside}"
    assert not ctx.marker.exists(), "code from the model file ran"
    if case.external:
        assert not external_loads, "onnx.load_external_data_for_model ran before the refusal"


@pytest.mark.parametrize("case", ONNX_CASES, ids=lambda c: c.id)
def test_hostile_onnx(case, ctx, cli, opened, corpus, monkeypatch):
    _check(case, ctx, cli, opened, corpus, monkeypatch, "ONNX")


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_hostile_torch(case, ctx, cli, opened, corpus, monkeypatch, request):
    if case.id.startswith("pt2-"):
        ctx.pt2 = request.getfixturevalue("tiny_pt2")
    _check(case, ctx, cli, opened, corpus, monkeypatch, "PyTorch")


def test_pickled_pt2_would_run_code_without_the_guard(ctx, request):
    """The pt2 case above is a real threat: plain ``torch.export.load`` runs the pickle (the marker appears)."""
    ctx.pt2 = request.getfixturevalue("tiny_pt2")
    path = _pt2_with_pickled_weight(ctx)[0]
    with pytest.raises(Exception):
        torch.export.load(str(path))
    assert ctx.marker.exists()


def test_trusted_pickle_and_pt2_still_load(ctx, request, tiny_net):
    """The refusals are not over-broad: a clean .pt2 loads without --trust-model, a module pickle loads with it."""
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    pt2 = request.getfixturevalue("tiny_pt2")
    model = load_model(ModelSpec(source=str(pt2), input_shape=(1, 16, 16)))
    x = torch.rand(5, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.logits(x), tiny_net(x))
    assert model.info.format == "torch.export" and len(model.info.sha256) == 64
    torch.save(tiny_net, ctx.model_dir / "net.pkl")
    trusted = load_model(ModelSpec(source=f"pickle:{ctx.model_dir / 'net.pkl'}", input_shape=(1, 16, 16), trust_model=True))
    assert trusted.num_classes == 3
    assert os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") is None


def test_open_log_sees_python_reads(ctx, opened):
    """The no-read-outside check is live: a Python read of the canary is caught by the audit hook."""
    with opened() as paths:
        assert ctx.canary.read_bytes() == CANARY
    assert _outside_reads(paths, ctx) == [str(ctx.canary)]
