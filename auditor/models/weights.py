"""Read a weights file into a plain state dict: unwrap checkpoint dicts and strip wrapper prefixes.

Training code saves weights in many shapes. This module accepts the common ones, always through
``torch.load(..., weights_only=True)`` (no arbitrary objects are unpickled) or safetensors:

* a plain state dict (``{"conv.weight": tensor, ...}``);
* a checkpoint dict holding it under ``state_dict``, ``model_state_dict`` (the PyTorch tutorials),
  ``model`` or ``net`` (next to optimiser state, epochs, ...);
* keys prefixed ``module.`` (``DataParallel``/``DistributedDataParallel``) or ``_orig_mod.``
  (``torch.compile``), in any nesting.

When the architecture is known its parameter names choose among the candidates; when several
candidates fit, the one used is named in the returned notes (they reach the report's model warnings).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from auditor.core.errors import ModelLoadError
from auditor.models.provenance import file_provenance

log = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


@dataclass
class Weights:
    """A state dict and what was done to find it."""

    state: dict[str, torch.Tensor]
    key: str | None = None  # the checkpoint key it came from; None for a plain state dict
    stripped: list[str] = field(default_factory=list)  # prefixes removed, outermost first
    notes: list[str] = field(default_factory=list)  # worth showing in the report (ambiguities)


def _is_state_dict(value: object) -> bool:
    return (isinstance(value, dict) and len(value) > 0 and all(isinstance(k, str) for k in value)
            and all(isinstance(v, torch.Tensor) for v in value.values()))


def strip_prefixes(state: dict[str, torch.Tensor], expected: set[str] | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove ``module.``/``_orig_mod.`` shared by every key, unless the architecture's own names carry it."""
    stripped: list[str] = []
    while True:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None or (expected is not None and expected and all(k.startswith(prefix) for k in expected)):
            return state, stripped
        state = {k[len(prefix):]: v for k, v in state.items()}
        stripped.append(prefix)


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        items = [f"{k!r}: {type(v).__name__}" for k, v in list(obj.items())[:12]]
        return "a dict {" + ", ".join(items) + (", ..." if len(obj) > 12 else "") + "}"
    return type(obj).__name__


def unwrap_checkpoint(obj: object, origin: str, expected: set[str] | None = None) -> Weights:
    """The state dict inside a loaded checkpoint object (see the module docstring)."""
    candidates: list[tuple[str | None, dict[str, torch.Tensor]]] = []
    if _is_state_dict(obj):
        candidates.append((None, obj))  # type: ignore[arg-type]
    elif isinstance(obj, dict):
        candidates += [(k, obj[k]) for k in WRAPPER_KEYS if _is_state_dict(obj.get(k))]
    if not candidates:
        raise ModelLoadError(
            f"{origin}: expected a dict of tensors (a state dict), or a checkpoint dict holding one under "
            f"{', '.join(repr(k) for k in WRAPPER_KEYS)}; got {_describe(obj)}"
        )
    unwrapped = []
    for key, state in candidates:
        state, stripped = strip_prefixes(state, expected)
        unwrapped.append(Weights(state, key, stripped))
    fitting = unwrapped if expected is None else [w for w in unwrapped if set(w.state) == expected]
    chosen = fitting[0] if fitting else max(unwrapped, key=lambda w: len(set(w.state) & (expected or set())))
    if len(fitting) > 1:
        chosen.notes.append(
            f"weights file {origin} holds several state dicts that fit ({', '.join(repr(w.key) for w in fitting)}); "
            f"used {chosen.key!r}"
        )
    if chosen.key is not None:
        log.info("weights file %s: using the state dict under %r", origin, chosen.key)
    if chosen.stripped:
        log.info("weights file %s: removed key prefix %s", origin, " + ".join(repr(p) for p in chosen.stripped))
    return chosen


def read_weights(path: Path, expected: set[str] | None = None) -> Weights:
    """Weights from a ``.safetensors`` file or a ``torch.save`` file, loaded with ``weights_only=True`` on the CPU."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path))
        except Exception as exc:
            raise ModelLoadError(f"cannot read safetensors file {path}: {exc}") from exc
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            detail = next((line.strip().split(". ")[0] for line in str(exc).splitlines() if "Unsupported" in line), str(exc)[:300])
            raise ModelLoadError(
                f"{path} is not a plain state dict loadable with weights_only=True ({type(exc).__name__}: {detail}); "
                "full-module pickles need pickle:PATH and --trust-model"
            ) from exc
    return unwrap_checkpoint(obj, str(path), expected)


def load_state_dict(path: Path, expected: set[str] | None = None, notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Weights from a .safetensors file or a state-dict file loaded with ``weights_only=True``; checkpoint wrappers
    and ``module.``/``_orig_mod.`` prefixes are removed (:mod:`auditor.models.weights`). Ambiguities are added to ``notes``."""
    file_provenance(path)
    weights = read_weights(path, expected)
    if notes is not None:
        notes.extend(weights.notes)
    return weights.state


def state_dict_mismatches(expected: dict[str, torch.Size], given: dict[str, torch.Tensor],
                          expected_word: str = "model", given_word: str = "file",
                          sep: str = " vs ") -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, shape mismatches) of ``given`` against the ``expected`` shapes."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = [f"{k}: {expected_word} {list(expected[k])}{sep}{given_word} {list(given[k].shape)}"
              for k in sorted(set(expected) & set(given)) if tuple(expected[k]) != tuple(given[k].shape)]
    return missing, unexpected, shapes


def apply_state_dict(net: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    missing, unexpected, shapes = state_dict_mismatches({k: v.shape for k, v in net.state_dict().items()}, state)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:20]}{' ...' if len(missing) > 20 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}")
        if shapes:
            parts.append(f"shape mismatches {shapes[:20]}")
        raise ModelLoadError(f"weights {origin} do not fit the architecture: " + "; ".join(parts))
    try:
        net.load_state_dict(state)
    except Exception as exc:  # dtype that cannot be copied, ...
        raise ModelLoadError(f"weights {origin} cannot be loaded into the architecture: {type(exc).__name__}: {str(exc)[:300]}") from exc
