"""Numbers that can't go stale: every generated docs section equals what its bench/results JSON renders now.

The registry is bench/sections.py (section name -> JSON, render function, documents). No benchmark runs
here: each section is re-rendered from the JSON on disk and compared with the text between its markers.
Fix a failure with ``python bench/run_all.py --docs-only``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import sections  # noqa: E402 - bench/ is not a package; imported after its folder is put on sys.path

MARKER = re.compile(r"<!-- ([\w-]+):(start|end) -->")


@pytest.mark.parametrize("section", sections.SECTIONS, ids=lambda s: s.name)
def test_section_matches_its_json(section: sections.Section) -> None:
    want = section.text()
    if want is None:
        pytest.skip(f"bench/results/{', '.join(section.results)} absent: nothing to compare {section.name} with")
    for doc in section.docs:
        have = sections.current(doc, section)
        assert have is not None, f"{doc} lacks the markers {section.markers}; run python bench/run_all.py --docs-only"
        assert have == want, (f"{doc}: section {section.name} differs from what bench/results/{', '.join(section.results)} "
                              "renders now; run python bench/run_all.py --docs-only")


def test_every_marker_in_the_docs_is_registered() -> None:
    """A section between markers that no render function owns would be hand-written again."""
    docs = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    owned = {(doc, s.name) for s in sections.SECTIONS for doc in s.docs}
    for path in docs:
        text = path.read_text()
        found = {m.group(1) for m in MARKER.finditer(text)}
        rel = str(path.relative_to(ROOT))
        unowned = sorted(n for n in found if (rel, n) not in owned)
        assert not unowned, f"{rel} has generated-section markers that bench/sections.py does not register: {unowned}"
        for name in found:
            assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1, \
                f"{rel}: section {name} must have exactly one start and one end marker"


def test_replace_section_round_trip(tmp_path: Path) -> None:
    """Writing a section twice leaves one copy, and the prose around it untouched (checked on a plain string)."""
    from common import replace_section

    doc = tmp_path / "d.md"
    doc.write_text("before\n\n<!-- x:start -->\nold\n<!-- x:end -->\n\nafter\n")
    block = "<!-- x:start -->\nnew 1.23\n<!-- x:end -->"
    replace_section(doc, "<!-- x:start -->", "<!-- x:end -->", block)
    replace_section(doc, "<!-- x:start -->", "<!-- x:end -->", block)
    assert doc.read_text() == "before\n\n" + block + "\n\nafter\n"
