"""The plugin manager: core hooks, then installed plugins through the ``auditor`` entry points."""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import pluggy

from auditor.core import hookspecs
from auditor.core.attack import Attack
from auditor.core.errors import PluginLoadError
from auditor.core.results import PluginInfo
from auditor.engine.registry import Registry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "auditor"
CORE_PLUGINS = ("auditor.models.loaders",)


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


def _trace_before(hook_name: str, hook_impls: list, kwargs: dict) -> None:
    log.info("hook %s(%s) -> %s", hook_name, ", ".join(kwargs), [i.plugin_name for i in hook_impls])


def _trace_after(outcome, hook_name: str, hook_impls: list, kwargs: dict) -> None:
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
    return Registry.build(pm).attacks


def collect_studies(pm: pluggy.PluginManager) -> dict:
    """name -> ``Study`` (see :mod:`auditor.lab.study`) from every plugin; duplicates are an error."""
    studies = {}
    for impl in pm.hook.auditor_register_studies.get_hookimpls():
        for study in impl.function() or []:
            if study.name in studies:
                raise PluginLoadError(f"study name {study.name!r} is registered twice (again by {impl.plugin_name!r})")
            studies[study.name] = study
    return dict(sorted(studies.items()))


def attack_owners(pm: pluggy.PluginManager) -> dict[str, str]:
    return Registry.build(pm).owners


def plugin_infos(pm: AuditorPluginManager) -> list[PluginInfo]:
    """Every registered plugin with its distribution, version, attacks and the capabilities they need."""
    return Registry.build(pm).plugins
