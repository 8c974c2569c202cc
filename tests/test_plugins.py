"""Plugin discovery through entry points, with fake third-party distributions (no install needed)."""
from __future__ import annotations

import importlib.metadata
import sys
import types

import pytest

from auditor import Attack, AttackOutput, hookimpl
from auditor.core.errors import PluginLoadError
from auditor.engine.plugins import collect_attacks, get_plugin_manager, plugin_infos


def _fake_plugin_module(name: str, attack_name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    class Fake(Attack):
        summary = "a fake third-party attack"

        def run(self, model, data, ctx):
            return AttackOutput()

    Fake.name = attack_name

    @hookimpl
    def auditor_register_attacks():
        return [Fake]

    module.auditor_register_attacks = auditor_register_attacks
    module.Fake = Fake
    return module


class _FakeDist:
    metadata = {"Name": "auditor-fake"}
    version = "9.9"


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, loader) -> None:
        self.name, self.value, self.group, self._loader, self.dist = name, value, "auditor", loader, _FakeDist()

    def load(self):
        return self._loader()


def _install(monkeypatch, *entry_points):
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        if kwargs.get("group") == "auditor":
            return list(entry_points)
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_entry_point_discovery_with_fake_distribution(monkeypatch):
    module = _fake_plugin_module("auditor_fake", "fake")
    monkeypatch.setitem(sys.modules, "auditor_fake", module)
    _install(monkeypatch, _FakeEntryPoint("fake", "auditor_fake", lambda: module))
    pm = get_plugin_manager(autoload=True)
    attacks = collect_attacks(pm)
    assert set(attacks) == {"fake"}
    info = plugin_infos(pm)[0]
    assert (info.name, info.distribution, info.version, info.attacks) == ("fake", "auditor-fake", "9.9", ["fake"])
    assert info.requires == {"fake": ["query"]}


def test_broken_plugin_error_names_it(monkeypatch):
    def boom():
        raise ImportError("no module named nonsense")

    _install(monkeypatch, _FakeEntryPoint("broken", "auditor_broken", boom))
    with pytest.raises(PluginLoadError, match=r"plugin 'broken' \(auditor_broken\) failed to import"):
        get_plugin_manager(autoload=True)


def test_blocked_plugin_is_not_loaded(monkeypatch):
    module = _fake_plugin_module("auditor_fake2", "fake2")
    _install(monkeypatch, _FakeEntryPoint("fake2", "auditor_fake2", lambda: module))
    pm = get_plugin_manager(autoload=True, blocked=["fake2"])
    assert "fake2" not in collect_attacks(pm)


def test_duplicate_attack_names_are_an_error():
    pm = get_plugin_manager(autoload=False)
    pm.register(_fake_plugin_module("a", "same"), name="a")
    pm.register(_fake_plugin_module("b", "same"), name="b")
    with pytest.raises(PluginLoadError, match="registered by both"):
        collect_attacks(pm)


def test_typo_in_hook_name_fails_loudly(monkeypatch):
    module = types.ModuleType("auditor_typo")

    @hookimpl
    def auditor_register_atacks():
        return []

    module.auditor_register_atacks = auditor_register_atacks
    _install(monkeypatch, _FakeEntryPoint("typo", "auditor_typo", lambda: module))
    with pytest.raises(PluginLoadError, match="auditor_register_atacks"):
        get_plugin_manager(autoload=True)


def test_builtin_plugins_come_from_entry_points():
    names = {ep.name for ep in importlib.metadata.entry_points(group="auditor")}
    assert {"inversion"} <= names
    attacks = collect_attacks(get_plugin_manager())
    for name, cls in attacks.items():
        assert cls.summary and cls.Config.model_json_schema()


def test_hook_auditor_load_model_can_be_intercepted(tiny_net):
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec, from_module

    class CustomSource:
        @hookimpl
        def auditor_load_model(self, spec):
            if spec.source.startswith("mem:"):
                return from_module(tiny_net, num_classes=3, input_shape=(1, 16, 16), source=spec.source)
            return None

    pm = get_plugin_manager(autoload=False)
    pm.register(CustomSource(), name="custom")
    assert load_model(ModelSpec(source="mem:tiny"), pm).info.source == "mem:tiny"


def test_hook_auditor_audit_finished_sees_report(run_attack):
    seen = []

    class Listener:
        @hookimpl
        def auditor_register_attacks(self):
            return [_fake_plugin_module("x", "noop").Fake]

        @hookimpl
        def auditor_audit_finished(self, report):
            seen.append(report)

    result = run_attack(Listener(), "noop")
    assert result.status == "completed" and len(seen) == 1
