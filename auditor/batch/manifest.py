"""What ``audit batch`` audits: a manifest (TOML) or a glob of model files, expanded into one item per model.

A manifest holds the shared sections of ``audit.toml`` (``[model]`` defaults such as ``input_shape``,
``[data]``, ``[run]``, ``[report]``, ``[preflight]``, ``[scoring]``, ``[severity]``, ``[attacks.NAME]``), a ``[batch]``
section (engine settings) and a list of models::

    [batch]
    out = "audit-batch"
    workers = 4

    [data]
    members = "data/train.npz"
    reference = "data/heldout.npz"

    [[models]]
    source = "models/a.onnx"

    [[models]]
    glob = "nightly/*.onnx"          # one item per matching file
    run = { plugins = ["tldr"] }     # per-model sections override the shared ones key by key

Relative paths are read from the manifest's folder. Each item gets a **key**: a short hash of the model
file's sha256 (and its weights' file), its whole configuration, the data files' fingerprints and the
installed plugins' versions, so a new attack version or a changed data file means a re-audit.
"""
from __future__ import annotations

import glob as globbing
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.core.errors import UsageError
from auditor.engine.config import format_validation_error

# Report locations are the batch's business, not part of what identifies an audit.
_NOT_HASHED = {"report": {"out", "junit", "sarif"}, "run": {"show_progress"}}
_PATH_PREFIXES = ("onnx:", "export:", "pickle:")


class BatchSettings(BaseModel):
    """``[batch]``: how the batch runs (command-line flags override these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    out: Path = Field(Path("audit-batch"), description="Folder for one report folder per model, compare.html and batch.json.")
    workers: int | None = Field(None, ge=1, description="Audits at a time (default: the CPUs Ray sees / cpus_per_task).")
    cpus_per_task: float = Field(1.0, gt=0, description="CPUs each audit declares to Ray; torch uses this many threads.")
    gpus_per_task: float = Field(1.0, ge=0, description="GPUs each audit declares when run.device is cuda.")
    ray_address: str | None = Field(None, description="Join this Ray cluster (e.g. 'auto' or 'head:6379'); default: a local instance.")
    retries: int = Field(1, ge=0, description="Times Ray re-runs an audit whose worker process died.")
    title: str | None = None
    junit: Path | None = None
    sarif: Path | None = None


_MERGED = ("run", "report", "preflight", "scoring", "severity")  # tables an entry merges over the shared ones, key by key


class _Sections(BaseModel):
    """The audit.toml tables a manifest shares and each ``[[models]]`` entry may override."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] | None = None
    run: dict[str, Any] = Field(default_factory=dict)
    report: dict[str, Any] = Field(default_factory=dict)
    preflight: dict[str, Any] = Field(default_factory=dict)
    scoring: dict[str, Any] = Field(default_factory=dict)
    severity: dict[str, Any] = Field(default_factory=dict)
    attacks: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ManifestModel(_Sections):
    """One ``[[models]]`` entry: a model file (``source``) or several (``glob``), with per-model overrides."""

    source: str | None = None
    glob: str | None = None
    name: str | None = None


class Manifest(_Sections):
    batch: BatchSettings = BatchSettings()
    models: list[ManifestModel] = Field(default_factory=list)


class BatchItem(BaseModel):
    """One model to audit: its label, its audit configuration (raw ``AuditConfig`` table) and its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    source: str
    config: dict[str, Any]
    key: str
    folder: str


def parse_manifest(raw: dict[str, Any], where: str = "manifest") -> Manifest:
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"invalid {where}: " + format_validation_error(exc)) from exc


def _resolve(text: str, base: Path) -> str:
    """A path relative to the manifest's folder, made absolute; other sources (``timm:``, ``digits``) unchanged."""
    for prefix in _PATH_PREFIXES:
        if text.startswith(prefix):
            return prefix + _resolve(text[len(prefix):], base)
    path = Path(text).expanduser()
    if path.is_absolute():
        return text
    if (base / path).exists():
        return str((base / path).resolve())
    head, sep, tail = text.rpartition(":")  # IDX folders as DIR:train
    if sep and head and (base / head).exists():
        return f"{(base / head).resolve()}:{tail}"
    return text


def source_path(source: str) -> Path | None:
    """The file behind a model source, when it is one."""
    for prefix in _PATH_PREFIXES:
        if source.startswith(prefix):
            source = source[len(prefix):]
    path = Path(source)
    return path if path.is_file() else None


def file_sha256(path: Path, cache: dict[Path, str] | None = None) -> str:
    """sha256 of a file's bytes; ``cache`` (one per batch) keeps a data file shared by many models from being read again."""
    if cache is not None and path in cache:
        return cache[path]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if cache is not None:
        cache[path] = digest.hexdigest()
    return digest.hexdigest()


def data_fingerprint(spec: str | None, cache: dict[Path, str] | None = None) -> str | None:
    """sha256 of a data file, or of a folder's listing (relative names and sizes); the text itself otherwise."""
    if spec is None:
        return None
    head, sep, _ = spec.rpartition(":")
    for candidate in (Path(spec), Path(head) if sep and head else None):
        if candidate is not None and candidate.is_file():
            return file_sha256(candidate.resolve(), cache)
        if candidate is not None and candidate.is_dir():
            listing = sorted((str(p.relative_to(candidate)), p.stat().st_size) for p in candidate.rglob("*") if p.is_file())
            return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return spec


def _merge(shared: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    return {**shared, **own}


def _item_config(m: Manifest, entry: ManifestModel, source: str, base: Path) -> dict[str, Any]:
    model = _merge(m.model, entry.model)
    model["source"] = source
    if model.get("weights"):
        model["weights"] = _resolve(str(model["weights"]), base)
    data = entry.data if entry.data is not None else m.data
    data = dict(data) if data else None
    if data:
        for key in ("members", "reference"):
            if isinstance(data.get(key), str):
                data[key] = _resolve(data[key], base)
    attacks = {name: _merge(m.attacks.get(name, {}), entry.attacks.get(name, {})) for name in {*m.attacks, *entry.attacks}}
    config: dict[str, Any] = {"model": model, **{name: _merge(getattr(m, name), getattr(entry, name)) for name in _MERGED},
                              "attacks": attacks}
    if data:
        config["data"] = data
    return config


def audit_key(config: dict[str, Any], plugins: list[dict[str, Any]], cache: dict[Path, str] | None = None) -> str:
    """sha256 over the model file, its configuration, the data fingerprints and the plugins' versions."""
    hashed = {section: ({k: v for k, v in table.items() if k not in _NOT_HASHED.get(section, set())} if isinstance(table, dict) else table)
              for section, table in config.items()}
    source = config["model"]["source"]
    path = source_path(source)
    weights = config["model"].get("weights")
    data = config.get("data") or {}
    payload = {"config": hashed, "model_sha256": file_sha256(path.resolve()) if path else None,
               "weights_sha256": file_sha256(Path(weights).resolve(), cache) if weights and Path(weights).is_file() else None,
               "members": data_fingerprint(data.get("members"), cache), "reference": data_fingerprint(data.get("reference"), cache),
               "plugins": plugins}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "model"


def expand(m: Manifest, base: Path, plugins: list[dict[str, Any]]) -> list[BatchItem]:
    """One item per model file (globs expanded, sorted); raises UsageError on an empty batch or duplicates."""
    items: list[BatchItem] = []
    cache: dict[Path, str] = {}
    for i, entry in enumerate(m.models):
        if (entry.source is None) == (entry.glob is None):
            raise UsageError(f"models[{i}] needs exactly one of 'source' or 'glob', got {entry.model_dump(include={'source', 'glob'})}")
        if entry.glob is not None:
            pattern = entry.glob if Path(entry.glob).is_absolute() else str(base / entry.glob)
            sources = sorted(str(Path(p).resolve()) for p in globbing.glob(pattern, recursive=True) if Path(p).is_file())
            if not sources:
                raise UsageError(f"models[{i}]: glob {entry.glob!r} matches no file (looked in {base})")
        else:
            sources = [_resolve(entry.source or "", base)]
        for source in sources:
            config = _item_config(m, entry, source, base)
            key = audit_key(config, plugins, cache)
            path = source_path(source)
            name = entry.name if entry.name and len(sources) == 1 else (path.name if path else source)
            items.append(BatchItem(name=name, source=source, config=config, key=key, folder=f"{_slug(Path(name).stem)}-{key[:12]}"))
    if not items:
        raise UsageError("the batch names no model: give a manifest with [[models]] entries or --models GLOB")
    seen: dict[str, str] = {}
    for item in items:
        if item.folder in seen:
            raise UsageError(f"{item.name!r} and {seen[item.folder]!r} are the same model with the same configuration")
        seen[item.folder] = item.name
    return items
