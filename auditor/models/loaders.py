"""Core model loaders: ``onnx:``, ``export:``, ``timm:``, ``factory:`` and (trusted) ``pickle:`` sources.

Provenance (sha256, size, format, opset, producer) is recorded before anything in the
file is executed. Full-module pickles are refused unless ``trust_model`` is set.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pluggy
import torch
from torch import nn

from auditor.core import hookspecs
from auditor.core.errors import ModelLoadError
from auditor.core.hookspecs import hookimpl
from auditor.core.results import ModelInfo
from auditor.models.model import (
    Classifier,
    ModelSpec,
    Preprocess,
    TorchClassifier,
    output_kind,
)
from auditor.models.provenance import file_provenance
from auditor.models.weights import (
    apply_state_dict,
    load_state_dict,
)

log = logging.getLogger(__name__)

SCHEMES = ("onnx", "export", "timm", "factory", "pickle")


def split_source(source: str) -> tuple[str, str]:
    """``scheme:rest``; a bare path ending in .onnx or .pt2 implies its scheme."""
    lower = source.lower()
    if lower.endswith(".onnx") and not lower.startswith(tuple(f"{s}:" for s in SCHEMES)):
        return "onnx", source
    if lower.endswith(".pt2") and not lower.startswith(tuple(f"{s}:" for s in SCHEMES)):
        return "export", source
    scheme, sep, rest = source.partition(":")
    if not sep or scheme not in SCHEMES:
        if lower.endswith((".pt", ".pth", ".pkl", ".bin", ".safetensors")):
            raise ModelLoadError(
                f"{source!r} holds weights or a pickle, not an architecture: use timm:ARCH or factory:module:function "
                f"with --weights {source}, or pickle:{source} --trust-model for a full-module pickle you trust"
            )
        raise ModelLoadError(f"unknown model source {source!r}: expected one of {', '.join(s + ':' for s in SCHEMES)} or a .onnx/.pt2 path")
    return scheme, rest


# --------------------------------------------------------------------------- ONNX


def load_onnx(path: Path, spec: ModelSpec) -> Classifier:
    from auditor.models.onnx_loader import load_onnx as load

    return load(path, spec)


# --------------------------------------------------------------------------- torch


def _final_softmax(net: nn.Module) -> nn.Module | None:
    """The network without its last layer when that is a Softmax over the classes (read as logits), else None."""
    if isinstance(net, nn.Sequential) and len(net) > 1 and isinstance(net[-1], nn.Softmax) and net[-1].dim in (None, 1, -1):
        return net[:-1]
    return None


def _wrap_torch(net: nn.Module, spec: ModelSpec, info: ModelInfo) -> TorchClassifier:
    shape = spec.input_shape or spec.data_image_shape
    if shape is None:
        raise ModelLoadError(f"{spec.source}: pass --input-shape C,H,W (torch models do not declare it)")
    if spec.input_shape is None:
        info = info.model_copy(update={"warnings": [*info.warnings, f"input shape {list(shape)} taken from the members' images"]})
    logits = _final_softmax(net) if spec.outputs in ("auto", "probabilities") else None
    if logits is not None:
        net = logits
        info = info.model_copy(update={"graph_edits": [*info.graph_edits, "the network ends in Softmax; its input is read as the logits"]})
    channels_last = spec.layout == "NHWC"
    preprocess = Preprocess(spec.input_range, spec.mean, spec.std, channels_last)
    probe = torch.rand((4, *shape), generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            out = net.eval()(preprocess(probe))
    except Exception as exc:
        raise ModelLoadError(f"{spec.source}: forward pass on a {list(probe.shape)} batch failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ModelLoadError(f"{spec.source}: expected a [N, classes] tensor output, got {getattr(out, 'shape', type(out).__name__)}")
    num_classes = spec.num_classes or int(out.shape[1])
    if out.shape[1] != num_classes:
        raise ModelLoadError(f"{spec.source}: the model outputs {out.shape[1]} scores but {num_classes} classes were declared")
    kind = "logits" if logits is not None else output_kind(spec.outputs, out)
    probabilities = kind == "probabilities"
    info = info.model_copy(update={**preprocess.describe(), "outputs_probabilities": probabilities, "outputs_kind": kind})
    return TorchClassifier(net, info, num_classes=num_classes, input_shape=tuple(shape),  # type: ignore[arg-type]
                           preprocess=preprocess, probabilities=probabilities)


# Archive members through which torch.export.load runs code from the file: AOTInductor shared
# libraries, TorchScript custom objects and plainly pickled "opaque" objects.
_PT2_CODE_MEMBERS = ("data/aotinductor/", "custom_obj_", "opaque_obj_", "data/executorch/", "data/mtia")


@contextlib.contextmanager
def _weights_only_torch_load() -> Iterator[None]:
    """Force ``weights_only=True`` on every ``torch.load`` inside (torch.export.load asks for
    ``weights_only=False`` on pickled weights and constants)."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def check_pt2_archive(path: Path) -> None:
    """Refuse .pt2 archives whose loading would run code from the file (unless the model is trusted)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception as exc:  # BadZipFile, truncated central directory, ...
        raise ModelLoadError(f"{path} is not a torch.export archive (not a readable zip file): {type(exc).__name__}: {exc}") from exc
    risky = [n for n in names if any(part in n for part in _PT2_CODE_MEMBERS)]
    if risky:
        raise ModelLoadError(
            f"{path} holds compiled code or pickled Python objects ({risky[:3]}), which torch.export.load would run; refused. "
            "Re-run with --trust-model only if you trust its author"
        )


def load_export(path: Path, spec: ModelSpec) -> Classifier:
    info = ModelInfo(source=spec.source, format="torch.export", **file_provenance(path))  # type: ignore[arg-type]
    guard = contextlib.nullcontext() if spec.trust_model else _weights_only_torch_load()
    if not spec.trust_model:
        check_pt2_archive(path)
    try:
        with guard, _kept_torch_export_log() as logged:
            net = torch.export.load(str(path)).module()
    except Exception as exc:
        import pickle

        exc = logged[0] if logged else exc  # the first failure, not the older-format fallback's generic one
        if isinstance(exc, pickle.UnpicklingError) and not spec.trust_model:
            detail = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), "weights_only unpickling failed")
            raise ModelLoadError(
                f"{path} holds pickled Python objects that torch.export.load would unpickle, which runs code from the file; refused "
                f"({detail.split('. ')[0][:200]}). Re-run with --trust-model only if you trust its author"
            ) from exc
        raise ModelLoadError(f"{path} is not a torch.export archive: {type(exc).__name__}: {str(exc)[:500]}") from exc
    return _wrap_torch(_Exported(net), spec, info)


@contextlib.contextmanager
def _kept_torch_export_log() -> Iterator[list[BaseException]]:
    """torch.export.load logs a full traceback to stderr before trying an older format; keep the error, print nothing."""
    logger = logging.getLogger("torch.export")
    errors: list[BaseException] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                errors.append(record.exc_info[1])

    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [_Keep()], False
    try:
        yield errors
    finally:
        logger.handlers, logger.propagate = handlers, propagate


class _Exported(nn.Module):
    """An exported program's module: already in inference form, and it refuses ``.train()``/``.eval()``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.program = module

    def train(self, mode: bool = True) -> _Exported:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


def _num_classes_from_state(state: dict[str, torch.Tensor]) -> int | None:
    matrices = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    return int(matrices[-1].shape[0]) if matrices else None


def load_timm(arch: str, spec: ModelSpec) -> Classifier:
    import timm

    if arch not in timm.list_models():
        close = timm.list_models(f"*{arch[:6]}*")[:10]
        raise ModelLoadError(f"unknown timm architecture {arch!r}; similar: {close}")
    if spec.weights is None:
        raise ModelLoadError(f"timm:{arch} needs --weights (a state dict or .safetensors); pretrained downloads are not used")
    notes: list[str] = []
    state = load_state_dict(spec.weights, notes=notes)
    info = ModelInfo(source=spec.source, format="timm+weights", warnings=notes, **file_provenance(spec.weights))  # type: ignore[arg-type]
    num_classes = spec.num_classes or _num_classes_from_state(state)
    kwargs: dict[str, object] = {"pretrained": False, "num_classes": num_classes}
    if spec.input_shape is not None:
        kwargs["in_chans"] = spec.input_shape[0]
    try:
        net = timm.create_model(arch, **kwargs, img_size=spec.input_shape[1:]) if spec.input_shape else timm.create_model(arch, **kwargs)
    except TypeError:
        net = timm.create_model(arch, **kwargs)
    apply_state_dict(net, state, str(spec.weights))
    if spec.input_shape is None:
        cfg = getattr(net, "pretrained_cfg", {}) or {}
        spec = spec.model_copy(update={"input_shape": tuple(cfg.get("input_size", (3, 224, 224)))})
    return _wrap_torch(net, spec, info)


def load_factory(target: str, spec: ModelSpec) -> Classifier:
    from auditor.models.factory import build

    net, provenance = build(target)
    if not isinstance(net, nn.Module):
        raise ModelLoadError(f"factory {target!r} returned {type(net).__name__}, expected a torch.nn.Module")
    info = ModelInfo(source=spec.source, format="factory", metadata=provenance)
    if spec.weights is not None:
        notes: list[str] = []
        state = load_state_dict(spec.weights, set(net.state_dict()), notes)
        apply_state_dict(net, state, str(spec.weights))
        info = info.model_copy(update={**file_provenance(spec.weights), "warnings": notes})
    return _wrap_torch(net, spec, info)


def load_pickle(path: Path, spec: ModelSpec) -> Classifier:
    provenance = file_provenance(path)
    if not spec.trust_model:
        raise ModelLoadError(
            f"{path} would be unpickled, which runs code from the file; refused. Re-run with --trust-model only if you trust its author"
        )
    try:
        net = torch.load(str(path), map_location="cpu", weights_only=False)  # noqa: S614 - explicit trust flag
    except Exception as exc:
        raise ModelLoadError(f"cannot unpickle {path}: {type(exc).__name__}: {str(exc)[:300]}") from exc
    if not isinstance(net, nn.Module):
        raise ModelLoadError(f"{path} unpickled to {type(net).__name__}, expected a torch.nn.Module")
    return _wrap_torch(net, spec, ModelInfo(source=spec.source, format="pickle (trusted)", **provenance))  # type: ignore[arg-type]


def check_input_shape(spec: ModelSpec) -> None:
    """An explicit ``--input-shape`` must be positive and modest before any probe batch is allocated."""
    from auditor.models.onnx_model import MAX_INPUT_ELEMENTS

    shape = spec.input_shape
    if shape is not None and (any(d <= 0 for d in shape) or shape[0] * shape[1] * shape[2] > MAX_INPUT_ELEMENTS):
        raise ModelLoadError(f"absurd input shape {list(shape)} (C,H,W): expected positive dims, at most {MAX_INPUT_ELEMENTS} elements")


@hookimpl(trylast=True)
def auditor_load_model(spec: ModelSpec) -> Classifier | None:
    check_input_shape(spec)
    scheme, rest = split_source(spec.source)
    if scheme == "onnx":
        return load_onnx(Path(rest), spec)
    if scheme == "export":
        return load_export(Path(rest), spec)
    if scheme == "timm":
        return load_timm(rest, spec)
    if scheme == "factory":
        return load_factory(rest, spec)
    return load_pickle(Path(rest), spec)


def load_model(spec: ModelSpec, pm: pluggy.PluginManager | None = None) -> Classifier:
    """Load through the plugin manager's ``auditor_load_model`` hook (core loaders last); without one, the core loaders only."""
    if pm is None:
        pm = pluggy.PluginManager("auditor")
        pm.add_hookspecs(hookspecs)
        pm.register(sys.modules[__name__], name=__name__)
    model = pm.hook.auditor_load_model(spec=spec)
    if model is None:
        raise ModelLoadError(f"no loader accepted {spec.source!r}")
    return model
