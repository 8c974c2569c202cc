"""Shared helpers for the benchmark scripts: train-or-load small models, write JSON, print tables."""
from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path

import torch

from auditor.data.sets import AuditData, balanced_subset, load_images
from auditor.lab import zoo
from auditor.lab.presets import preset
from auditor.models.model import from_module

log = logging.getLogger("bench")
CACHE = Path(__file__).resolve().parent / "cache"


def mnist_data(dataset: str, n_members: int, n_reference: int = 1000, seed: int = 0) -> tuple[AuditData, object]:
    ds = preset(dataset)
    train, test = load_images(ds.train), load_images(ds.test)
    members = train.subset(balanced_subset(train.labels.numpy(), n_members, seed))
    smallest = int(torch.bincount(test.labels).min())
    reference = test.subset(balanced_subset(test.labels.numpy(), min(n_reference, 10 * smallest), seed))
    return AuditData(members, reference, 10, ds.class_names), ds


def trained(dataset: str, arch: str, n: int, seed: int = 0, epochs: int | None = None):
    """A classifier trained by this project on ``n`` class-balanced images (cached under bench/cache/)."""
    data, ds = mnist_data(dataset, n, seed=seed)
    path = CACHE / f"{dataset}-{arch}-{n}-s{seed}.pt"
    net = zoo.build(arch, data.image_shape, 10)
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
    else:
        epochs = epochs or (40 if n <= 1000 else max(5, 40_000 // n))
        zoo.train(net, data.members.images, data.members.labels, mean=ds.mean, std=ds.std, epochs=epochs, seed=seed)
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    net.eval()
    onnx_path = path.with_suffix(".onnx")
    if not onnx_path.exists():
        zoo.export_onnx(net, data.image_shape, onnx_path, mean=ds.mean, std=ds.std)
    model = from_module(net, num_classes=10, input_shape=data.image_shape, mean=ds.mean, std=ds.std, source=f"bench:{path.stem}")
    return model, onnx_path, data


def write_json(name: str, payload: dict, out: Path | None = None) -> Path:
    out = out or Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "platform": platform.platform()}, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **payload}
    out.write_text(json.dumps(payload, indent=2))
    return out


def table(rows: list[dict], columns: list[str]) -> str:
    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    widths = [max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)), "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(cell(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def likeness_scale(data: AuditData, per_class: int = 20) -> dict[str, float]:
    """For scale: mean best SSIM to the class's members of the class-average image, and of ``per_class`` real unseen images."""
    from auditor.scoring import ssim_matrix

    blur, real = [], []
    for k in range(data.num_classes):
        members = data.members.of_class(k)
        blur.append(ssim_matrix(members.mean(0, keepdim=True), members).max(1).values.mean())
        real.append(ssim_matrix(data.reference.of_class(k)[:per_class], members).max(1).values.mean())
    return {"class_average_ssim": float(torch.stack(blur).mean()), "unseen_real_ssim": float(torch.stack(real).mean())}


def replace_section(path: Path, start: str, end: str, section: str) -> None:
    """Put a generated ``section`` (which begins with ``start`` and ends with ``end``) into ``path``, replacing the old one."""
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
