"""Find and capture the classifier's penultimate features (the input of its last linear layer)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def find_feature_layer(module: nn.Module, name: str | None = None) -> tuple[str, nn.Module] | None:
    """The layer whose *input* are the penultimate features: ``name`` if given, else the last ``nn.Linear``.

    Works on plain torch models, timm models (the head), and onnx2pytorch conversions (Gemm becomes
    ``nn.Linear``). Returns None when the module has no linear layer (for example a query-only model).
    """
    named = dict(module.named_modules())
    if name is not None:
        if name not in named:
            raise ValueError(f"no layer named {name!r}; layers: {[n for n in named if n][:40]}")
        return name, named[name]
    last = None
    for layer_name, layer in module.named_modules():
        if isinstance(layer, nn.Linear):
            last = (layer_name, layer)
    return last


class FeatureTap:
    """Records the flattened input of one layer on every forward pass."""

    def __init__(self, layer: nn.Module) -> None:
        self.value: torch.Tensor | None = None
        self._handle = layer.register_forward_pre_hook(self._hook)

    def _hook(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.value = inputs[0].flatten(1)

    def remove(self) -> None:
        self._handle.remove()


@contextmanager
def tap_features(module: nn.Module, name: str | None = None) -> Iterator[FeatureTap | None]:
    found = find_feature_layer(module, name)
    if found is None:
        yield None
        return
    tap = FeatureTap(found[1])
    try:
        yield tap
    finally:
        tap.remove()
