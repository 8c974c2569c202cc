"""The attack registry: every plugin's attacks, validated, built once per audit from the plugin manager."""
from __future__ import annotations

from dataclasses import dataclass

import pluggy

from auditor.core.attack import Attack
from auditor.core.errors import PluginLoadError
from auditor.core.results import PluginInfo


@dataclass(frozen=True)
class Registry:
    """name -> attack class, name -> owning plugin, and each plugin's description for the report."""

    attacks: dict[str, type[Attack]]
    owners: dict[str, str]
    plugins: list[PluginInfo]

    @classmethod
    def build(cls, pm: pluggy.PluginManager) -> Registry:
        """Call every ``auditor_register_attacks`` once; duplicates and non-attacks are errors that name the plugin."""
        attacks: dict[str, type[Attack]] = {}
        owners: dict[str, str] = {}
        infos: list[PluginInfo] = []
        records = getattr(pm, "records", {})
        for impl in pm.hook.auditor_register_attacks.get_hookimpls():
            classes = list(impl.function() or [])
            for attack in classes:
                if not (isinstance(attack, type) and issubclass(attack, Attack)):
                    raise PluginLoadError(f"plugin {impl.plugin_name!r} registered {attack!r}, expected an Attack subclass")
                name = getattr(attack, "name", None)
                if not name or not getattr(attack, "summary", None):
                    raise PluginLoadError(f"attack {attack.__qualname__} of plugin {impl.plugin_name!r} needs a name and a summary")
                if name in attacks and attacks[name] is not attack:
                    raise PluginLoadError(f"attack name {name!r} is registered by both {owners[name]!r} and {impl.plugin_name!r}")
                attacks[name], owners[name] = attack, impl.plugin_name
            record = records.get(impl.plugin_name)
            if record is not None:
                record.attacks = classes
            infos.append(PluginInfo(name=impl.plugin_name, distribution=record.distribution if record else None,
                                    version=record.version if record else None, attacks=[c.name for c in classes],
                                    requires={c.name: sorted(r.value for r in c.requires) for c in classes}))
        return cls(dict(sorted(attacks.items())), owners, sorted(infos, key=lambda i: i.name))
