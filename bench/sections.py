"""Every generated section of the docs: which JSON it is rendered from, by which function, into which documents.

    python bench/sections.py            # rewrite every section from bench/results/*.json (same as run_all.py --docs-only)
    python bench/sections.py --check    # exit 1 and list the sections whose text differs from what their JSON gives now

A section sits in its document between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; its render
function returns the whole block, markers included, from the parsed JSON alone. ``bench/run_all.py`` and
each benchmark write their sections through ``write``; ``tests/test_docs_numbers.py`` re-renders every
registered section and compares it with the documents.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@dataclass(frozen=True)
class Section:
    """One generated block: ``render`` gets the JSON of ``results`` (one file: its payload; several: ``{stem: payload}``)."""

    name: str
    results: tuple[str, ...]
    docs: tuple[str, ...]
    render: Callable[[object], str]

    @property
    def markers(self) -> tuple[str, str]:
        return f"<!-- {self.name}:start -->", f"<!-- {self.name}:end -->"

    def payload(self) -> object | None:
        """The parsed JSON, or None when a results file is missing (the section is then left as it is)."""
        paths = [RESULTS / r for r in self.results]
        if not all(p.exists() for p in paths):
            return None
        data = {p.stem: json.loads(p.read_text()) for p in paths}
        return data[paths[0].stem] if len(paths) == 1 else data

    def text(self) -> str | None:
        payload = self.payload()
        if payload is None:
            return None
        out = self.render(payload).strip()
        start, end = self.markers
        if not (out.startswith(start) and out.endswith(end)):
            raise ValueError(f"section {self.name}: render must return text from {start!r} to {end!r}, got {out[:60]!r}…{out[-60:]!r}")
        return out


# Render functions are imported when called: the benches' modules import torch and the plugins.
def _scoring(p: dict) -> str:
    from doc_renders import render_scoring
    return render_scoring(p)


def _compare(p: dict) -> str:
    from doc_renders import render_compare
    return render_compare(p)


def _headline(p: dict) -> str:
    from doc_renders import render_headline
    return render_headline(p)


def _e2e(p: dict) -> str:
    from doc_renders import render_e2e
    return render_e2e(p)


def _inversion(p: dict) -> str:
    from doc_renders import render_inversion
    return render_inversion(p)


def _bnn_sat(p: dict) -> str:
    from bnn_sat_report import render
    return render(p)


def _shortcut(p: dict) -> str:
    from bench_shortcut import render
    return render(p)


def _membership(p: dict) -> str:
    from membership_report import render
    return render(p)  # as bench_membership.py writes it (heading included)


def _batch(p: dict) -> str:
    from bench_batch import render
    return render(p)  # as bench_batch.py --docs writes it (heading included)


def _scale(p: dict) -> str:
    from bench_batch import render_estimate
    return render_estimate(p)


def _preprocessing(p: dict) -> str:
    from bench_preprocessing import render
    return render(p)


def _kkt(p: dict) -> str:
    from bench_kkt import markdown
    return markdown(p)


def _kkt_levers(p: dict) -> str:
    from kkt_levers import markdown
    return markdown(p["entries"])


def _tldr(name: str) -> Callable[[dict], str]:
    def render(p: dict) -> str:
        import tldr_renders
        return getattr(tldr_renders, f"render_{name}")(p)
    return render


def _reference_shift(p: dict) -> str:
    from bench_reference_shift import render
    return render(p)


def _verdict(profile: str) -> Callable[[dict], str]:
    def render(p: dict) -> str:
        from verdict_checks import render as render_verdict
        name = "bench_verdict" if profile == "full" else f"bench_verdict_{profile}"
        return render_verdict(p, profile, f"<!-- {name}:start -->", f"<!-- {name}:end -->")
    return render


BENCHMARKS = "docs/benchmarks.md"
TLDR = "docs/tldr.md"
SECTIONS: tuple[Section, ...] = (
    Section("bench_headline", ("scoring.json", "compare.json"), (BENCHMARKS,), _headline),
    Section("bench_scoring", ("scoring.json",), (BENCHMARKS,), _scoring),
    Section("bench_compare", ("compare.json",), (BENCHMARKS,), _compare),
    Section("bench_bnn_sat", ("bnn_sat.json",), (BENCHMARKS, "docs/bnn_sat.md"), _bnn_sat),
    Section("bench_e2e", ("e2e.json",), (BENCHMARKS,), _e2e),
    Section("bench_inversion", ("inversion.json",), (BENCHMARKS, "docs/inversion.md"), _inversion),
    Section("kkt-bench", ("kkt.json",), (BENCHMARKS,), _kkt),
    Section("kkt-levers", ("kkt_levers.json",), ("docs/kkt.md",), _kkt_levers),
    Section("bench_membership", ("membership.json",), (BENCHMARKS,), _membership),
    Section("bench_batch", ("batch.json",), (BENCHMARKS,), _batch),
    Section("scale_estimate", ("batch.json",), ("docs/scale.md",), _scale),
    Section("bench_preprocessing", ("preprocessing.json",), (BENCHMARKS,), _preprocessing),
    Section("bench_verdict", ("verdict.json",), (BENCHMARKS,), _verdict("full")),
    Section("bench_verdict_quick", ("verdict.json",), (BENCHMARKS,), _verdict("quick")),
    Section("bench_reference_shift", ("reference_shift.json",), (BENCHMARKS, "docs/membership.md"), _reference_shift),
    Section("bench_shortcut", ("shortcut.json",), ("docs/shortcut.md",), _shortcut),
    Section("tldr_sweep_first", ("sweep_tldr-cnn-100-600+400.json", "sweep_tldr-mlp-100-600+400.json",
                                 "sweep_tldr-vit-100-600+400.json"), (TLDR,), _tldr("sweep_first")),
    Section("tldr_sweep_second", ("sweep_tldr-cnn-100-700+500.json", "sweep_tldr-mlp-100-700+500.json"), (TLDR,),
            _tldr("sweep_second")),
    Section("tldr_study", ("study_privacy_mnist.json",), (TLDR,), _tldr("study")),
    Section("tldr_study_vs_inversion", ("study_privacy_mnist.json", "study_privacy_mnist_inversion100.json",
                                        "sweep_tldr-cnn-100-700+500.json"), (TLDR,), _tldr("study_vs_inversion")),
)
BY_NAME = {s.name: s for s in SECTIONS}


def select(names: list[str] | None = None) -> list[Section]:
    unknown = sorted(set(names or ()) - set(BY_NAME))
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; expected some of {sorted(BY_NAME)}")
    return [BY_NAME[n] for n in names] if names else list(SECTIONS)


def current(doc: str, section: Section) -> str | None:
    """The block between the section's markers in ``doc`` as it is on disk, or None when the markers are absent."""
    path = ROOT / doc
    text = path.read_text() if path.exists() else ""
    start, end = section.markers
    if start not in text or end not in text:
        return None
    return text[text.index(start):text.index(end) + len(end)]


def write(names: list[str] | None = None) -> list[str]:
    """Rewrite the sections (all, or the named ones) in every document they belong to; returns 'doc: name' for each written."""
    from common import replace_section

    written = []
    for section in select(names):
        out = section.text()
        if out is None:
            continue
        for doc in section.docs:
            replace_section(ROOT / doc, *section.markers, out)
            written.append(f"{doc}: {section.name}")
    return written


def stale(names: list[str] | None = None) -> list[str]:
    """'doc: name (why)' for every section whose document text differs from what its JSON renders now."""
    out = []
    for section in select(names):
        want = section.text()
        if want is None:
            continue
        for doc in section.docs:
            have = current(doc, section)
            if have is None:
                out.append(f"{doc}: {section.name} (markers missing)")
            elif have != want:
                out.append(f"{doc}: {section.name} (differs from bench/results/{', '.join(section.results)})")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report stale sections (exit 1 if any)")
    p.add_argument("names", nargs="*", help="section names (default: all)")
    args = p.parse_args()
    if args.check:
        bad = stale(args.names or None)
        print("\n".join(bad) if bad else "every generated section matches its JSON")
        return 1 if bad else 0
    for line in write(args.names or None):
        print(f"wrote {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
