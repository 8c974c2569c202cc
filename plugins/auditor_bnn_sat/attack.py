"""The ``bnn_sat`` attack: exact inversion of a binarised network with a SAT solver."""
from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from pydantic import Field

from auditor import (
    Attack,
    AttackConfig,
    AttackOutput,
    AttackResult,
    AuditData,
    Capability,
    CapabilityError,
    Classifier,
    Finding,
    Metric,
    RunContext,
    Severity,
)
from auditor_bnn_sat.fold import extract_network
from auditor_bnn_sat.network import BinaryNetwork
from auditor_bnn_sat.phases import relaxed_bits
from auditor_bnn_sat.report import class_table, grid_figure
from auditor_bnn_sat.solve import EncodingMismatch, Engine

if TYPE_CHECKING:
    from auditor import AuditRun

log = logging.getLogger(__name__)


class BnnSatConfig(AttackConfig):
    """Options of :class:`BnnSatInversion`."""

    per_class: int = Field(8, ge=1, description="Distinct verified preimages to enumerate per class.")
    classes: list[int] | None = Field(None, description="Classes to invert; default all.")
    time_limit_s: float = Field(60.0, gt=0, description="Seconds per class (finding and enumerating); the solver is "
                                "interrupted at the limit and the class reported as timeout if nothing was found.")
    solver: str = Field("mc", description="pysat solver. 'mc' (MiniCard) has native cardinality constraints and honours "
                        "interrupts; 'gc3'/'gc4' (Gluecard) and CaDiCaL ('cd195') run in a child process killed at the "
                        "limit; 'g4', 'm22', 'mcb', ... need encoding='cnf'.")
    encoding: Literal["native", "cnf", "hybrid"] = Field("hybrid", description="How hidden neurons y <=> sum >= D are "
                                                         "written: native AtMost constraints, full-equivalence "
                                                         "sequential counters (CNF), or CNF for small counters only.")
    cnf_max_cells: int = Field(6000, ge=1, description="hybrid: largest counter (inputs x band width) written as CNF.")
    strategy: Literal["direct", "decompose"] = Field("direct", description="direct: one solver, class selectors as "
                                                     "assumptions; decompose: choose first-layer patterns that make "
                                                     "the class win, then solve the first layer (cores cut patterns).")
    phases: Literal["relax", "seed", "random", "none"] = Field(
        "relax", description="Where the solver's phases start: relax = a data-free continuous relaxation of the "
        "network optimised towards the class; seed = the first reference (non-member) image of the class, never a "
        "member (falls back to relax without reference data); random; none = the solver's default.")
    conflict_budget: int | None = Field(20000, ge=1, description="Conflicts per restart round (doubled each round, "
                                        "phases perturbed); None: one uninterrupted solve per preimage.")
    diverse: bool = Field(True, description="Fresh random phases after each preimage, so the enumeration spreads out "
                          "instead of listing neighbours of the first preimage.")
    hamming: int | None = Field(None, ge=0, description="Only inputs within this many bits of the class's seed "
                                "(reference) image: a local robustness check instead of a global inversion.")
    check_samples: int = Field(256, ge=0, description="Random inputs and member images on which the integer form must "
                               "agree with the model's forward pass before solving.")


class BnnSatInversion(Attack):
    """Per class, verified inputs a binarised network maps to it, or a proof that none exists."""

    name = "bnn_sat"
    summary = ("Exact inversion of binarised networks with SAT: verified preimages per class, "
               "or a proof that a class is unreachable.")
    requires = frozenset({Capability.PARAMETERS})
    Config = BnnSatConfig
    metrics = (
        Metric(name="preimages", label="SAT preimages found", higher_is_better=False, format="d"),
        Metric(name="classes_sat", label="classes with a preimage", higher_is_better=False, format="d"),
        Metric(name="classes_unsat", label="classes proven unreachable", higher_is_better=None, format="d", compare=False),
        Metric(name="classes_timeout", label="classes timed out", higher_is_better=None, format="d", compare=False),
        Metric(name="input_bits", higher_is_better=None, format="d", compare=False),
        Metric(name="nearest_member_bit_agreement", higher_is_better=False, format=".1%", compare=False),
        Metric(name="encode_time_s", higher_is_better=None, format=".2f", compare=False),
        Metric(name="load_time_s", higher_is_better=None, format=".2f", compare=False),
        Metric(name="median_query_s", higher_is_better=None, format=".3f", compare=False),
    )

    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        cfg: BnnSatConfig = self.config  # type: ignore[assignment]
        net = extract_network(model)
        if net.num_classes != data.num_classes:
            raise CapabilityError(f"the network has {net.num_classes} outputs, the data {data.num_classes} classes")
        per_class = min(cfg.per_class, 2) if ctx.smoke else cfg.per_class
        limit = min(cfg.time_limit_s, 5.0) if ctx.smoke else cfg.time_limit_s
        check_agreement(net, model, data, 32 if ctx.smoke else cfg.check_samples, ctx.seed)
        classes = cfg.classes if cfg.classes is not None else list(range(net.num_classes))
        bad = [c for c in classes if not 0 <= c < net.num_classes]
        if bad:
            raise ValueError(f"classes {bad} out of range 0..{net.num_classes - 1}")
        seeds = reference_seeds(net, model, data)
        notes = [f"{net.summary()}."] + net.notes
        if cfg.phases == "seed" and not seeds:
            notes.append("phases='seed' needs reference images; the relaxation was used instead")
        engine = Engine(net, solver=cfg.solver, encoding=cfg.encoding, strategy=cfg.strategy,
                        cnf_max_cells=cfg.cnf_max_cells, seed=ctx.seed)
        per: list[dict] = []
        found_bits: list[np.ndarray] = []
        found_labels: list[int] = []
        try:
            for t in ctx.progress(classes, desc="bnn_sat classes", total=len(classes)):
                left = ctx.time_left()
                q_limit = limit if left is None else max(0.1, min(limit, left - 0.5))
                start = time.monotonic()
                phases = self._phases(cfg, engine, net, t, seeds, q_limit, ctx)
                hamming = None
                if cfg.hamming is not None:
                    if t not in seeds:
                        per.append(_row(t, data, "skipped", [], False, None, 0.0, 0))
                        notes.append(f"class {t}: no reference image to centre the Hamming ball on")
                        continue
                    hamming = (seeds[t], cfg.hamming)
                r = engine.query(t, count=per_class, time_limit=max(0.1, q_limit - (time.monotonic() - start)),
                                 phases=phases, randomize=self._diverse(cfg, engine, net, t, seeds, q_limit, ctx),
                                 conflict_budget=cfg.conflict_budget, hamming=hamming,
                                 exclude=[seeds[t]] if cfg.phases == "seed" and t in seeds else None)
                elapsed = time.monotonic() - start
                first = (elapsed - r.time_s + r.times[0]) if r.times else None
                per.append(_row(t, data, r.status, r.found, r.exhausted, first, elapsed, r.rounds))
                found_bits += r.found
                found_labels += [t] * len(r.found)
                log.info("class %d: %s, %d preimages in %.2fs", t, r.status, len(r.found), elapsed)
        finally:
            engine.close()
        return self._output(net, model, data, engine, per, found_bits, found_labels, notes, cfg, ctx)

    @staticmethod
    def _phases(cfg: BnnSatConfig, engine: Engine, net: BinaryNetwork, t: int, seeds: dict[int, np.ndarray],
                limit: float, ctx: RunContext) -> np.ndarray | None:
        if cfg.phases == "seed" and t in seeds:
            return seeds[t]
        if cfg.phases in ("relax", "seed"):
            bits, _ = relaxed_bits(net, t, seed=ctx.seed, time_limit=limit / 4,
                                   steps=100 if ctx.smoke else 300, restarts=1 if ctx.smoke else 3)
            return bits
        if cfg.phases == "random":
            return engine.random_bits()
        return None

    @staticmethod
    def _diverse(cfg: BnnSatConfig, engine: Engine, net: BinaryNetwork, t: int, seeds: dict[int, np.ndarray],
                 limit: float, ctx: RunContext) -> bool | Callable[[int], np.ndarray]:
        """Phases before each further preimage: a new relaxation start, a perturbed seed, or random."""
        if not cfg.diverse:
            return False
        if cfg.phases == "seed" and t in seeds:
            rng = np.random.default_rng(ctx.seed * 31 + t)
            return lambda i: seeds[t] ^ (rng.random(net.n_inputs) < 0.1)
        if cfg.phases in ("relax", "seed"):
            return lambda i: relaxed_bits(net, t, seed=ctx.seed + 1000 * (i + 1), time_limit=limit / 10,
                                          steps=100 if ctx.smoke else 300, restarts=1)[0]
        return True

    def _output(self, net: BinaryNetwork, model: Classifier, data: AuditData, engine: Engine, per: list[dict],
                found_bits: list[np.ndarray], found_labels: list[int], notes: list[str], cfg: BnnSatConfig,
                ctx: RunContext) -> AttackOutput:
        recon = labels = None
        if found_bits:
            recon = net.to_images(np.stack(found_bits))
            labels = torch.tensor(found_labels, dtype=torch.long)
            pred = model.predict(recon)
            wrong = (pred != labels).nonzero().flatten().tolist()
            if wrong:
                i = wrong[0]
                raise EncodingMismatch(f"{len(wrong)} preimages are misclassified by the model's forward pass "
                                       f"(first: #{i} for class {int(labels[i])} got {int(pred[i])})")
        status = [p["status"] for p in per]
        times = [p["time_s"] for p in per if p["status"] != "skipped"]
        metrics: dict[str, float] = {f"formula_{k}": float(v) for k, v in engine.size.items()}
        metrics |= {"encode_time_s": engine.encode_time, "load_time_s": engine.load_time,
                    "input_bits": float(len(net.free_inputs())), "classes_sat": float(status.count("sat")),
                    "classes_unsat": float(status.count("unsat")), "classes_timeout": float(status.count("timeout")),
                    "preimages": float(len(found_bits)), "median_query_s": statistics.median(times) if times else 0.0}
        for p in per:
            metrics[f"time_class_{p['class']}_s"] = p["time_s"]
        agreement = nearest_member_agreement(net, data, found_bits, found_labels)
        if agreement is not None:
            metrics["nearest_member_bit_agreement"] = agreement
        rows = [recon[labels == p["class"]][:8] if recon is not None else torch.zeros(0) for p in per]
        figures = [grid_figure("SAT preimages per class", rows,
                               "One row per class (in table order): inputs the model classifies as that class, each "
                               "checked by a forward pass. Empty row: unreachable or timed out.")] if found_bits else []
        if ctx.smoke:
            notes.append("smoke run: at most 2 preimages per class and 5 s per class")
        return AttackOutput(reconstructions=recon, labels=labels, metrics=metrics, figures=figures,
                            tables=[class_table(per)], notes=notes, score=recon is not None)

    def assess(self, result: AttackResult, run: AuditRun | None = None) -> list[Finding]:
        """Unreachable classes, inconclusive classes, and how data-like the preimages are."""
        findings: list[Finding] = []
        m = result.metrics
        if result.scores is not None and m.get("preimages", 0) > 0:
            try:
                from auditor import reconstruction_findings

                findings += reconstruction_findings(self.name, result, run.thresholds if run is not None else None)
            except ImportError:  # the core's copy rule is optional here
                pass
        unsat, timeout = int(m.get("classes_unsat", 0)), int(m.get("classes_timeout", 0))
        if unsat:
            findings.append(Finding(attack=self.name, title=f"{unsat} classes are unreachable (proven by SAT)",
                                    severity=Severity.INFO, metric="classes_unsat", value=float(unsat),
                                    detail="No binary input at all is classified as these classes."))
        if timeout:
            findings.append(Finding(attack=self.name, title=f"{timeout} classes undecided within the time limit",
                                    severity=Severity.INFO, metric="classes_timeout", value=float(timeout),
                                    detail="Raise time_limit_s or use phases='relax'/'seed' to decide them."))
        agree = m.get("nearest_member_bit_agreement")
        if agree is not None:
            data_like = agree >= 0.9
            findings.append(Finding(
                attack=self.name, severity=Severity.LOW if data_like else Severity.INFO,
                title="SAT preimages are close to member images" if data_like else
                "SAT preimages do not resemble the members",
                metric="nearest_member_bit_agreement", value=agree, threshold=0.9,
                detail="Mean share of input bits a preimage shares with its nearest binarised member of the class. "
                       "Low values are the paper's point: the model assigns noise-like inputs to classes."))
        return findings


def _row(t: int, data: AuditData, status: str, found: list, exhausted: bool, first: float | None, total: float,
         rounds: int) -> dict:
    name = data.class_name(t)
    return {"class": t, "name": name, "status": status, "found": len(found), "exhausted": exhausted,
            "first_s": first, "time_s": total, "rounds": rounds}


def check_agreement(net: BinaryNetwork, model: Classifier, data: AuditData, samples: int, seed: int) -> None:
    """The integer form must classify random bit inputs and member images as the model does.

    Raises:
        EncodingMismatch: on disagreement for an exact network (a bug).
        CapabilityError: on disagreement where the extraction flagged float rounding.
    """
    if samples <= 0:
        return
    rng = np.random.default_rng(seed)
    bits = rng.random((samples, net.n_inputs)) < rng.random((samples, 1))
    bits = np.where(net.in_const[None, :] >= 0, net.in_const[None, :] == 1, bits)
    images = net.to_images(bits)
    members = data.members.images[:samples]
    if members.shape[1:] == images.shape[1:]:
        images = torch.cat([images, members])
    ours = net.predict_bits(net.to_bits(images))
    theirs = model.predict(images).numpy()
    bad = int((ours != theirs).sum())
    if bad:
        msg = f"the integer form disagrees with the model's forward pass on {bad} of {len(images)} inputs"
        if net.exact:
            raise EncodingMismatch(msg)
        raise CapabilityError(f"not a binarised network: {msg} (float rounding: {'; '.join(net.notes)})")


def reference_seeds(net: BinaryNetwork, model: Classifier, data: AuditData) -> dict[int, np.ndarray]:
    """Bits of the first reference image of each class that the model classifies correctly."""
    ref = data.reference
    if ref is None or len(ref) == 0 or tuple(ref.image_shape) != tuple(net.input_shape):
        return {}
    images, labels = ref.images[:4096], ref.labels[:4096]
    ok = (model.predict(images) == labels).numpy()
    seeds = {}
    for t in range(net.num_classes):
        idx = np.flatnonzero(ok & (labels.numpy() == t))
        if len(idx):
            seeds[t] = net.to_bits(images[idx[:1]])[0]
    return seeds


def nearest_member_agreement(net: BinaryNetwork, data: AuditData, bits: list[np.ndarray], labels: list[int]) -> float | None:
    """Mean over preimages of the largest share of bits shared with a member image of the same class."""
    members = data.members
    if not bits or tuple(members.image_shape) != tuple(net.input_shape):
        return None
    member_bits = net.to_bits(members.images[:5000]).astype(np.int8)
    member_labels = members.labels[:5000].numpy()
    scores = []
    for b, t in zip(bits, labels):
        same = member_bits[member_labels == t]
        if len(same):
            scores.append(float((same == b.astype(np.int8)[None, :]).mean(1).max()))
    return float(np.mean(scores)) if scores else None
