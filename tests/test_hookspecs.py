"""Meta-test of the plugin contract: every hook is documented (docstring and plugins/README.md) and tested.

A hook counts as tested when some test in tests/ is named ``test_hook_<hook name>...``; the ones
missing elsewhere are here.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from auditor import Attack, AttackOutput, hookimpl
from auditor.core import hookspecs
from auditor.core.errors import PluginLoadError
from auditor.engine.plugins import collect_attacks, collect_studies, get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "plugins" / "README.md").read_text(encoding="utf-8")


def _hooks() -> dict[str, object]:
    pm = get_plugin_manager(autoload=False)
    names = [name for name in dir(pm.hook) if name.startswith("auditor_")]
    return {name: getattr(hookspecs, name) for name in names}


def _signature(spec: object) -> str:
    return f"{spec.__name__}({', '.join(inspect.signature(spec).parameters)})"  # type: ignore[attr-defined]


def test_the_hook_list_is_the_module_list():
    declared = {n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "auditor_spec")}
    assert set(_hooks()) == declared and declared


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_has_a_docstring(name):
    doc = inspect.getdoc(_hooks()[name])
    assert doc and len(doc.split()) >= 8, f"{name} needs a docstring that says when it is called and what it returns"


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_is_in_the_plugin_guide_with_its_signature(name):
    signature = _signature(_hooks()[name])
    assert f"### `{signature}`" in README, f"plugins/README.md needs a '### `{signature}`' section"


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_has_a_test_named_after_it(name):
    pattern = re.compile(rf"^\s*def (test_hook_{name}\w*)\(", re.MULTILINE)
    found = [m.group(1) for path in (ROOT / "tests").glob("test_*.py") for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert found, f"no test named test_hook_{name}... in tests/"


class _Attack(Attack):
    name = "hooked"
    summary = "an attack offered through auditor_register_attacks"

    def run(self, model, data, ctx):
        return AttackOutput()


def test_hook_auditor_register_attacks_offers_attack_classes():
    class Plugin:
        @hookimpl
        def auditor_register_attacks(self):
            return [_Attack]

    pm = get_plugin_manager(autoload=False)
    pm.register(Plugin(), name="hooked-plugin")
    assert pm.hook.auditor_register_attacks() == [[_Attack]]
    assert collect_attacks(pm) == {"hooked": _Attack}

    class NotAnAttack:
        @hookimpl
        def auditor_register_attacks(self):
            return [object]

    pm.register(NotAnAttack(), name="wrong")
    with pytest.raises(PluginLoadError, match="expected an Attack subclass"):
        collect_attacks(pm)


def test_hook_auditor_register_studies_offers_named_studies():
    from auditor.lab.study import Study

    calls = []
    study = Study(name="tiny-study", summary="records its arguments", main=lambda argv: calls.append(argv) or 0)

    class Plugin:
        @hookimpl
        def auditor_register_studies(self):
            return [study]

    pm = get_plugin_manager(autoload=False)
    pm.register(Plugin(), name="studies")
    studies = collect_studies(pm)
    assert studies == {"tiny-study": study}
    assert studies["tiny-study"].main(["--quick"]) == 0 and calls == [["--quick"]]

    class Again:
        @hookimpl
        def auditor_register_studies(self):
            return [study]

    pm.register(Again(), name="again")
    with pytest.raises(PluginLoadError, match="registered twice"):
        collect_studies(pm)
