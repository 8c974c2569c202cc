"""LPIPS from a local weights cache: never downloads, never scores with a random backbone.

The LPIPS linear heads ship inside the ``lpips`` wheel; the backbone (AlexNet, SqueezeNet
1.1 or VGG16 ``features``) is torchvision's ImageNet checkpoint, which the user installs
once into ``<cache>/lpips/`` with ``audit lpips install FILE --net alex``. The model is built
with ``pnet_rand=True`` (no download) and the cached backbone is then loaded strictly into
it; when the file is missing or unusable, :meth:`LpipsScorer.from_cache` returns a scorer
with ``available=False`` and a ``reason`` saying how to fix it.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from auditor.core.errors import ModelLoadError, UsageError
from auditor.core.paths import cache_dir
from auditor.models.weights import state_dict_mismatches

log = logging.getLogger(__name__)

BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
    "vgg": "vgg16-397923af.pth",
}
MIN_SIZE = 32  # AlexNet's pooling leaves nothing of smaller images
_BATCH = 256


def lpips_dir(cache: Path | None = None) -> Path:
    """The folder holding the backbone files: ``<cache>/lpips`` (default cache: ``auditor.core.paths.cache_dir()``)."""
    return Path(cache if cache is not None else cache_dir()) / "lpips"


def _check_net(net: str) -> None:
    if net not in BACKBONE_FILES:
        raise UsageError(f"unknown LPIPS net {net!r}: expected one of {sorted(BACKBONE_FILES)}")


def _build(net: str) -> Any:
    """The LPIPS model with its shipped linear heads and a random (to be replaced) backbone."""
    import lpips

    with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation inside lpips
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling / zip errors from a broken or unsafe file
        raise ModelLoadError(f"cannot load {path} as a torch state dict (weights_only=True): {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: expected a state dict of tensors (torchvision's checkpoint), got {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _listed(keys: list[str], limit: int = 12) -> str:
    more = f" ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _map_backbone(state: dict[str, torch.Tensor], model: Any, net: str, source: Path) -> dict[str, torch.Tensor]:
    """Map torchvision ``features.<i>.<name>`` keys onto LPIPS's ``slice<k>.<i>.<name>``; all must match.

    Raises:
        ModelLoadError: listing missing, unexpected and mis-shaped keys.
    """
    expected: dict[str, tuple[str, torch.Size]] = {}
    for key, value in model.net.state_dict().items():
        _, index, name = key.split(".", 2)
        expected[f"features.{index}.{name}"] = (key, value.shape)
    given = {k for k in state if k.startswith("features.")}
    missing, unexpected, shapes = state_dict_mismatches({k: shape for k, (_, shape) in expected.items()},
                                                        {k: state[k] for k in given}, "expected", "got", sep=", ")
    if missing or unexpected or shapes:
        parts = [f"{source} is not torchvision's {net} backbone ({BACKBONE_FILES[net]})"]
        if missing:
            parts.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listed(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_listed(shapes)}")
        if not given:
            parts.append(f"the file has no 'features.*' keys (first keys: {', '.join(list(state)[:5]) or 'none'})")
        raise ModelLoadError("; ".join(parts))
    return {net_key: state[tv_key].float() for tv_key, (net_key, _) in expected.items()}


def install_backbone(path: Path, net: str = "alex", cache: Path | None = None) -> Path:
    """Validate a user-supplied torchvision backbone state dict and copy it into the cache.

    Args:
        path: the checkpoint (e.g. ``alexnet-owt-7be5be79.pth`` from torchvision).
        net: ``alex``, ``squeeze`` or ``vgg``.
        cache: cache root (default ``auditor.core.paths.cache_dir()``); the file lands in ``<cache>/lpips/``.

    Returns:
        The installed file's path.

    Raises:
        UsageError: unknown ``net``.
        ModelLoadError: the file is missing, unloadable, or has the wrong keys or shapes.
    """
    _check_net(net)
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"LPIPS backbone file not found: {path}")
    _map_backbone(_read_checkpoint(path), _build(net), net, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    official = BACKBONE_FILES[net].rsplit("-", 1)[1].removesuffix(".pth")
    if not digest.startswith(official):
        log.warning("%s is not torchvision's released %s weights (sha256 %s..., expected %s...); "
                    "LPIPS values will differ from published ones", path, net, digest[:8], official)
    dest = lpips_dir(cache) / BACKBONE_FILES[net]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if path.resolve() != dest.resolve():
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    log.info("installed LPIPS %s backbone at %s", net, dest)
    return dest


class LpipsScorer:
    """LPIPS distances (lower = more similar) for images in [0, 1], from cached weights only."""

    def __init__(self, model: Any | None, net: str, reason: str = "", source: Path | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.model = model.to(device) if model is not None else None
        self.net = net
        self.reason = reason
        self.source = source
        self.device = torch.device(device)

    @property
    def available(self) -> bool:
        return self.model is not None

    @classmethod
    def from_cache(cls, net: str = "alex", cache: Path | None = None, device: str | torch.device = "cpu") -> LpipsScorer:
        """Build a scorer from ``<cache>/lpips/<torchvision file>``.

        Never raises for a missing or unusable file: the scorer then has ``available=False``
        and ``reason`` says what is missing and how to provide it.
        """
        _check_net(net)
        file = lpips_dir(cache) / BACKBONE_FILES[net]
        how = (f"download torchvision's {BACKBONE_FILES[net]} and run `audit lpips install FILE --net {net}` "
               f"(it copies the file into {file.parent})")
        if not file.is_file():
            return cls(None, net, f"the LPIPS {net} backbone {BACKBONE_FILES[net]} is not in {file.parent}; {how}", file, device)
        try:
            model = _build(net)
            model.net.load_state_dict(_map_backbone(_read_checkpoint(file), model, net, file), strict=True)
        except (ModelLoadError, RuntimeError) as exc:
            log.warning("LPIPS unavailable: %s", exc)
            return cls(None, net, f"the cached LPIPS backbone is unusable ({exc}); {how}", file, device)
        return cls(model, net, "", file, device)

    def _require(self) -> Any:
        if self.model is None:
            raise RuntimeError(f"LPIPS is not available: {self.reason}")
        return self.model

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [0, 1] -> 3-channel, at least 32 px, scaled to [-1, 1] on the device."""
        if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
            raise ValueError(f"expected images shaped [N, 1|3|4, H, W], got {list(x.shape)}")
        x = x.detach().to(self.device, torch.float32).clamp(0.0, 1.0)
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x[:, :3]
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIZE:
            scale = MIN_SIZE / min(h, w)
            size = (max(MIN_SIZE, math.ceil(h * scale - 1e-9)), max(MIN_SIZE, math.ceil(w * scale - 1e-9)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
        return 2.0 * x - 1.0

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-pair LPIPS of ``x`` and ``y`` [N, C, H, W] -> [N] (CPU float32).

        Raises:
            RuntimeError: the scorer is not available.
            ValueError: shapes differ.
        """
        model = self._require()
        if x.shape != y.shape:
            raise ValueError(f"expected y shaped like x {list(x.shape)}, got {list(y.shape)}")
        out = [model(self._prepare(x[i:i + _BATCH]), self._prepare(y[i:i + _BATCH])).reshape(-1)
               for i in range(0, x.shape[0], _BATCH)]
        return torch.cat(out).float().cpu() if out else torch.zeros(0)

    def _features(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """Per layer: unit-normalised features [N, D], the same weighted by the linear head, and H*W."""
        import lpips

        model = self._require()
        chunks: list[list[torch.Tensor]] = []
        for i in range(0, x.shape[0], _BATCH):
            outs = model.net(model.scaling_layer(self._prepare(x[i:i + _BATCH])))
            chunks.append([lpips.normalize_tensor(o) for o in outs])
        layers = []
        for k, lin in enumerate(model.lins):
            feats = torch.cat([c[k] for c in chunks])
            weight = lin.model[-1].weight.reshape(1, -1, 1, 1)
            layers.append((feats.flatten(1), (feats * weight).flatten(1), feats.shape[2] * feats.shape[3]))
        return layers

    @torch.inference_mode()
    def matrix(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """All-pairs LPIPS [N, M] (CPU float32); features are computed once per image.

        The per-layer weighted squared distance is expanded as ``|a|^2_w + |b|^2_w - 2 a.(w b)``,
        so the pairs cost one matrix product per layer.
        """
        self._require()
        if x.shape[1:] != y.shape[1:]:
            raise ValueError(f"expected y images shaped like x {list(x.shape[1:])}, got {list(y.shape[1:])}")
        out = torch.zeros(x.shape[0], y.shape[0], device=self.device)
        if x.shape[0] == 0 or y.shape[0] == 0:
            return out.cpu()
        for (fx, wx, hw), (fy, wy, _) in zip(self._features(x), self._features(y)):
            sq_x = (fx * wx).sum(1, keepdim=True)
            sq_y = (fy * wy).sum(1)[None, :]
            out += (sq_x + sq_y - 2.0 * (wx @ fy.T)).clamp_(min=0.0) / hw
        return out.cpu()
