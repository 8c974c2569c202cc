"""The architecture and style hold: import-linter's contracts, ruff, no import cycle in auditor/, small modules,
and every ``# noqa`` says why. Run as tests so that ``.ci/run`` needs only the README's test command."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 300


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: python3 -m pip install -e '.[test]'")
    return found


def test_import_contracts_hold():
    """Layers, the host never importing a plugin, plugins importing only the public API (pyproject.toml)."""
    run = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_ruff_passes_on_the_whole_repository():
    run = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_known_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_auditor():
    """Imports inside functions count; imports under ``if TYPE_CHECKING:`` do not."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter")
    built = grimp.build_graph("auditor", include_external_packages=False, exclude_type_checking_imports=True, cache_dir=None)
    graph = {m: set(built.find_modules_directly_imported_by(m)) for m in built.modules}
    assert _cycles(graph) == []


def test_no_module_under_auditor_exceeds_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "auditor").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_noqa_says_why():
    """``# noqa: CODE - reason``: a suppression without a reason is a defect to fix, not to hide."""
    pattern = re.compile(r"#\s*noqa(?::\s*[A-Z0-9, ]+)?(.*)$")
    bare = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".git", "build"} or rel.parts[:2] == ("examples", "example_plugin") or ".venv" in rel.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = pattern.search(line)
            if match and not re.search(r"[A-Za-z]{3}", match.group(1)):
                bare.append(f"{rel}:{number}")
    assert bare == []
