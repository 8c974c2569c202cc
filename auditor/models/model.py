"""The classifier abstraction: every model, whatever its format, becomes a :class:`Classifier`.

Pixel-space contract: callers pass float32 NCHW images in [0, 1]; the classifier applies the
model's own preprocessing (layout, input range, mean/std) and returns logits. A model whose
output is already probabilities has log-probabilities returned, which softmax maps back to the
same probabilities, so attacks always see logits.
"""
from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from auditor.core.capabilities import Capability
from auditor.core.errors import CapabilityError
from auditor.core.results import ModelInfo

log = logging.getLogger(__name__)


class ModelSpec(BaseModel):
    """How to load a model (``[model]`` in audit.toml, or the ``audit run`` arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(description="onnx:PATH, export:PATH.pt2, timm:ARCH, factory:module:function, pickle:PATH, or a bare .onnx/.pt2 path.")
    weights: Path | None = Field(None, description="State dict (.pt/.pth, loaded weights_only) or .safetensors for timm:/factory: sources.")
    num_classes: int | None = Field(None, ge=2, description="Number of classes; read from the model where possible.")
    input_shape: tuple[int, int, int] | None = Field(None, description="C,H,W of one input image; read from the model where possible.")
    layout: Literal["auto", "NCHW", "NHWC"] = "auto"
    input_range: tuple[float, float] | None = Field(
        None, description="Pixel range the model expects before mean/std; unset lets the preflight choose (default [0, 1]).")
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    outputs: Literal["auto", "logits", "probabilities", "log-probabilities"] = "auto"
    output_name: str | None = Field(None, description="Graph output holding the class scores, when an ONNX graph has several.")
    expected_classes: int | None = Field(None, ge=2, description="Class count of the auditor's data (set by the runner); picks the "
                                                                  "class-score output among several.")
    data_image_shape: tuple[int, int, int] | None = Field(None, description="C,H,W of the auditor's images (set by the runner); "
                                                                            "fills dims the graph leaves open.")
    trust_model: bool = Field(False, description="Allow full-module pickles (runs arbitrary code from the file).")
    parity_tolerance: float = Field(1e-4, gt=0, description="Max |onnxruntime - converted| as a fraction of the largest logit.")

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError(f"std values must be positive, got {value}")
        return value


    @property
    def preprocessing_given(self) -> bool:
        """True when the user fixed the pixel transform (range, mean or std); the preflight then only checks it."""
        return self.input_range is not None or self.mean is not None or self.std is not None


DEFAULT_RANGE = (0.0, 1.0)


class Preprocess(nn.Module):
    """Pixels in [0, 1] (NCHW) -> what the network expects: range, mean/std, layout, then the graph's own shape.

    ``target`` is the per-example shape of a graph input that is not an image tensor: ``(H, W)``,
    ``(D,)`` or ``(D, 1)``; flattening follows the layout (NCHW flattens C,H,W; NHWC flattens H,W,C).
    """

    def __init__(self, input_range: tuple[float, float] | None, mean: tuple[float, ...] | None,
                 std: tuple[float, ...] | None, channels_last: bool, target: tuple[int, ...] | None = None) -> None:
        super().__init__()
        lo, hi = input_range or DEFAULT_RANGE
        self.input_range = (float(lo), float(hi))
        self.lo, self.scale, self.channels_last, self.target = float(lo), float(hi - lo), channels_last, target
        self.mean_values, self.std_values = mean, std
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean or (0.0,), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std or (1.0,), dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * self.scale + self.lo - self.mean) / self.std
        if self.channels_last:
            x = x.permute(0, 2, 3, 1)
        return x if self.target is None else x.reshape(x.shape[0], *self.target)

    def like(self, **changes: object) -> Preprocess:
        """A copy with some settings changed (the preflight's candidates)."""
        settings = {"input_range": self.input_range, "mean": self.mean_values, "std": self.std_values,
                    "channels_last": self.channels_last, "target": self.target}
        settings.update(changes)
        return Preprocess(**settings).to(self.mean.device)  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        return {"input_range": list(self.input_range), "mean": list(self.mean_values) if self.mean_values else None,
                "std": list(self.std_values) if self.std_values else None,
                "layout": "NHWC" if self.channels_last else "NCHW",
                "flatten": None if self.target is None or len(self.target) == 2 and self.target[1] != 1 else
                ("HWC" if self.channels_last else "CHW")}


class LogProbabilities(nn.Module):
    """Turns probability outputs into log-probabilities (logits up to a constant).

    Only for probability outputs that cannot be read before their softmax (ONNX graphs that end in
    Softmax are read at its input instead): a class whose probability underflows has no gradient here.
    """

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.log(p.clamp_min(1e-30))


def looks_like_probabilities(outputs: torch.Tensor) -> bool:
    """True when every row is non-negative and sums to 1 (softmax already applied)."""
    return bool((outputs >= -1e-6).all() and torch.allclose(outputs.sum(1), torch.ones(len(outputs)), atol=1e-4))


def looks_like_log_probabilities(outputs: torch.Tensor) -> bool:
    """True when every row is non-positive and its exponentials sum to 1 (log-softmax already applied)."""
    return bool((outputs <= 1e-6).all() and torch.allclose(torch.logsumexp(outputs.double(), 1), torch.zeros(len(outputs), dtype=torch.float64),
                                                           atol=1e-4))


def output_kind(spec_outputs: str, probe: torch.Tensor) -> str:
    """``logits``, ``probabilities`` or ``log-probabilities``: as declared, else detected on a probe batch."""
    if spec_outputs != "auto":
        return spec_outputs
    if looks_like_probabilities(probe):
        return "probabilities"
    if looks_like_log_probabilities(probe):
        return "log-probabilities"
    return "logits"


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

    def set_preprocess(self, preprocess: Preprocess) -> None:
        """Use another pixel transform (the preflight's choice); the network is unchanged."""
        self._preprocess = preprocess
        try:
            module = self.module()
        except CapabilityError:
            module = None
        if isinstance(module, nn.Sequential):
            module[0] = preprocess
        self.info = self.info.model_copy(update=preprocess.describe())

    def to(self, device: torch.device | str) -> Classifier:
        """Move the differentiable module (when there is one) to ``device``; queries follow it where they can."""
        with contextlib.suppress(CapabilityError):  # a query-only model has no module to move
            self.module().to(device)
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
