"""The plugin manager: core hooks, then installed plugins through the ``auditor`` entry points."""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import pluggy

from auditor import hookspecs
from auditor.attack import Attack
from auditor.errors import PluginLoadError
from auditor.results import PluginInfo

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "auditor"
CORE_PLUGINS = ("auditor.loaders",)


@dataclass
class PluginRecord:
    name: str
    distribution: str | None
    version: str | None
    attacks: list[type[Attack]] = field(default_factory=list)


class AuditorPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__("auditor")
        self.records: dict[str, PluginRecord] = {}


def _load_entry_points(pm: AuditorPluginManager) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(f"plugin {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}") from exc
        dist = getattr(ep, "dist", None)
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(f"plugin {ep.name!r} ({ep.value}) is invalid: {exc}") from exc
        pm.records[ep.name] = PluginRecord(ep.name, dist.metadata["Name"] if dist else None, dist.version if dist else None)


def _trace_before(hook_name: str, hook_impls: list, kwargs: dict) -> None:  # noqa: ANN001
    log.info("hook %s(%s) -> %s", hook_name, ", ".join(kwargs), [i.plugin_name for i in hook_impls])


def _trace_after(outcome, hook_name: str, hook_impls: list, kwargs: dict) -> None:  # noqa: ANN001
    log.info("hook %s returned %r", hook_name, outcome.get_result() if outcome.exception is None else outcome.exception)


def get_plugin_manager(*, autoload: bool | None = None, blocked: Iterable[str] = ()) -> AuditorPluginManager:
    """Return a fresh plugin manager: core hooks, then installed plugins, validated."""
    pm = AuditorPluginManager()
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    for modname in CORE_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
    if autoload is None:
        autoload = not os.environ.get("AUDITOR_DISABLE_PLUGIN_AUTOLOAD")
    if autoload:
        _load_entry_points(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(exc)) from exc
    if os.environ.get("AUDITOR_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def collect_attacks(pm: pluggy.PluginManager) -> dict[str, type[Attack]]:
    """name -> attack class from every plugin's ``auditor_register_attacks``; duplicates are an error."""
    attacks: dict[str, type[Attack]] = {}
    owner: dict[str, str] = {}
    records = getattr(pm, "records", {})
    for impl in pm.hook.auditor_register_attacks.get_hookimpls():
        classes = impl.function() or []
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Attack)):
                raise PluginLoadError(f"plugin {impl.plugin_name!r} registered {cls!r}, expected an Attack subclass")
            name = getattr(cls, "name", None)
            if not name or not getattr(cls, "summary", None):
                raise PluginLoadError(f"attack {cls.__qualname__} of plugin {impl.plugin_name!r} needs a name and a summary")
            if name in attacks and attacks[name] is not cls:
                raise PluginLoadError(f"attack name {name!r} is registered by both {owner[name]!r} and {impl.plugin_name!r}")
            attacks[name], owner[name] = cls, impl.plugin_name
        if impl.plugin_name in records:
            records[impl.plugin_name].attacks = list(classes)  # assigned after validation; this runs once per call
    return dict(sorted(attacks.items()))


def collect_studies(pm: pluggy.PluginManager) -> dict:
    """name -> :class:`auditor.study.Study` from every plugin; duplicates are an error."""
    studies = {}
    for impl in pm.hook.auditor_register_studies.get_hookimpls():
        for study in impl.function() or []:
            if study.name in studies:
                raise PluginLoadError(f"study name {study.name!r} is registered twice (again by {impl.plugin_name!r})")
            studies[study.name] = study
    return dict(sorted(studies.items()))


def attack_owners(pm: pluggy.PluginManager) -> dict[str, str]:
    return {cls.name: impl.plugin_name for impl in pm.hook.auditor_register_attacks.get_hookimpls() for cls in (impl.function() or [])}


def plugin_infos(pm: AuditorPluginManager) -> list[PluginInfo]:
    """Every registered plugin with its distribution, version, attacks and the capabilities they need."""
    infos: list[PluginInfo] = []
    for impl in pm.hook.auditor_register_attacks.get_hookimpls():
        record = pm.records.get(impl.plugin_name)
        classes = impl.function() or []
        infos.append(PluginInfo(
            name=impl.plugin_name,
            distribution=record.distribution if record else None,
            version=record.version if record else None,
            attacks=[c.name for c in classes],
            requires={c.name: sorted(r.value for r in c.requires) for c in classes},
        ))
    return sorted(infos, key=lambda i: i.name)
