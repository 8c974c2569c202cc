"""The classifier abstraction: every model, whatever its format, becomes a :class:`Classifier`.

Pixel-space contract: callers pass float32 NCHW images in [0, 1]; the classifier applies the
model's own preprocessing (layout, input range, mean/std) and returns logits. A model whose
output is already probabilities has log-probabilities returned, which softmax maps back to the
same probabilities, so attacks always see logits.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from auditor.attack import Capability
from auditor.errors import CapabilityError
from auditor.results import ModelInfo

log = logging.getLogger(__name__)


class ModelSpec(BaseModel):
    """How to load a model (``[model]`` in audit.toml, or the ``audit run`` arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(description="onnx:PATH, export:PATH.pt2, timm:ARCH, factory:module:function, pickle:PATH, or a bare .onnx/.pt2 path.")
    weights: Path | None = Field(None, description="State dict (.pt/.pth, loaded weights_only) or .safetensors for timm:/factory: sources.")
    num_classes: int | None = Field(None, ge=2, description="Number of classes; read from the model where possible.")
    input_shape: tuple[int, int, int] | None = Field(None, description="C,H,W of one input image; read from the model where possible.")
    layout: Literal["auto", "NCHW", "NHWC"] = "auto"
    input_range: tuple[float, float] = Field((0.0, 1.0), description="Pixel range the model expects before mean/std.")
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    outputs: Literal["auto", "logits", "probabilities"] = "auto"
    trust_model: bool = Field(False, description="Allow full-module pickles (runs arbitrary code from the file).")
    parity_tolerance: float = Field(1e-4, gt=0, description="Max |onnxruntime - converted| as a fraction of the largest logit.")

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError(f"std values must be positive, got {value}")
        return value


class Preprocess(nn.Module):
    """Pixels in [0, 1] (NCHW) -> what the network expects: range, mean/std, then layout."""

    def __init__(self, input_range: tuple[float, float], mean: tuple[float, ...] | None,
                 std: tuple[float, ...] | None, channels_last: bool) -> None:
        super().__init__()
        lo, hi = input_range
        self.lo, self.scale, self.channels_last = float(lo), float(hi - lo), channels_last
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean or (0.0,), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std or (1.0,), dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * self.scale + self.lo - self.mean) / self.std
        return x.permute(0, 2, 3, 1) if self.channels_last else x


class LogProbabilities(nn.Module):
    """Turns probability outputs into log-probabilities (logits up to a constant)."""

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.log(p.clamp_min(1e-12))


def looks_like_probabilities(outputs: torch.Tensor) -> bool:
    """True when every row is non-negative and sums to 1 (softmax already applied)."""
    return bool((outputs >= -1e-6).all() and torch.allclose(outputs.sum(1), torch.ones(len(outputs)), atol=1e-4))


class Classifier(ABC):
    """A loaded model, whatever its source."""

    info: ModelInfo
    num_classes: int
    input_shape: tuple[int, int, int]
    capabilities: frozenset[Capability]

    @abstractmethod
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [N, K] for pixels [N, C, H, W] in [0, 1]; no gradients. This is the query interface."""

    def module(self) -> nn.Module:
        """A differentiable module pixels -> logits (preprocessing included). Raises :class:`CapabilityError`."""
        raise CapabilityError(f"{self.info.source} provides no gradients: {self.info.gradients_unavailable_reason or 'query-only model'}")

    def network(self) -> nn.Module | None:
        """The bare network without preprocessing (torch models and converted ONNX), or None."""
        return None

    @property
    def preprocess(self) -> Preprocess:
        return self._preprocess

    def to(self, device: torch.device | str) -> Classifier:
        """Move the differentiable module (when there is one) to ``device``; queries follow it where they can."""
        try:
            self.module().to(device)
        except CapabilityError:
            pass
        return self

    def predict(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        return torch.cat([self.logits(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(images) == labels).float().mean())


class TorchClassifier(Classifier):
    """A torch ``nn.Module`` with its preprocessing; gradients and parameters available."""

    def __init__(self, net: nn.Module, info: ModelInfo, *, num_classes: int, input_shape: tuple[int, int, int],
                 preprocess: Preprocess, probabilities: bool = False, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._net = net.eval().to(self.device)
        for p in self._net.parameters():
            p.requires_grad_(False)
        self._preprocess = preprocess.to(self.device)
        layers: list[nn.Module] = [self._preprocess, self._net]
        if probabilities:
            layers.append(LogProbabilities())
        self._module = nn.Sequential(*layers).eval()
        self.num_classes, self.input_shape = num_classes, input_shape
        self.capabilities = frozenset({Capability.QUERY, Capability.GRADIENTS, Capability.PARAMETERS})
        self.info = info.model_copy(update={
            "capabilities": sorted(c.value for c in self.capabilities),
            "parameter_count": sum(p.numel() for p in net.parameters()),
            "num_classes": num_classes, "input_shape": list(input_shape),
        })

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._module(images.to(self.device)).float().cpu()

    def to(self, device: torch.device | str) -> TorchClassifier:
        self.device = torch.device(device)
        self._module.to(self.device)
        return self

    def module(self) -> nn.Module:
        return self._module

    def network(self) -> nn.Module:
        return self._net


def from_module(net: nn.Module, *, num_classes: int, input_shape: tuple[int, int, int], source: str = "python:module",
                mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                input_range: tuple[float, float] = (0.0, 1.0), probabilities: bool = False) -> TorchClassifier:
    """Wrap an in-memory torch module (tests, studies, and the Python API)."""
    info = ModelInfo(source=source, format="torch-module", mean=list(mean) if mean else None,
                     std=list(std) if std else None, input_range=list(input_range), layout="NCHW",
                     outputs_probabilities=probabilities)
    return TorchClassifier(net, info, num_classes=num_classes, input_shape=input_shape,
                           preprocess=Preprocess(input_range, mean, std, channels_last=False), probabilities=probabilities)
