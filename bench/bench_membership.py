"""Membership inference: the builtin `membership` plugin on MNIST CNNs, overfitted and regularised, of 1,000 and 10,000
images and a DP-SGD control, side by side with auditml's threshold attack (the peer) on the same models and evaluation sets.

    python bench/bench_membership.py            # trains what is not cached (bench/cache/), audits what is not in the JSON
    python bench/bench_membership.py --force    # audit every row again (models stay cached)
    python bench/bench_membership.py --only plain-cnn-1000,dp-tinycnn-5000   # some targets only (others kept from the JSON)
    python bench/bench_membership.py --redo "zoo-cnn-1000:RMIA, 2 reference models"   # one stored row again
    python bench/bench_membership.py --quick    # the unregularised 1,000-image model, defaults, 2,000 reference images
                                                # (writes results/membership_quick.json; the full rows and the docs stay)
    python bench/bench_membership.py --docs     # only rewrite the generated section of docs/benchmarks.md from the JSON

Targets (recipes in bench/membership_targets.py and bench/common.py):
* ``plain-cnn-1000`` / ``plain-cnn-10000``: the zoo CNN's geometry with no dropout, batch norm, augmentation or weight
  decay, Adam until the member loss is at most 1e-4 (the 10,000-image one: at most 5 epochs, 785 steps, more than the
  1,000-image one takes): an honestly overfitted model, like the issue's published MNIST CNN;
* ``zoo-cnn-1000`` / ``zoo-cnn-10000``: the project's zoo CNN (dropout + batch norm, weight decay 1e-5): regularisation helps;
* ``dp-tinycnn-5000``: DP-SGD, ε = 8.

Settings: the plugin's defaults, offline reference models ("RMIA, k reference models") and online LiRA ("online LiRA, k
shadow models": ``reference_mode = "online"``, 1,000 members against about 2,000 non-members, shadows on random halves of
that pool; :func:`online_options`).

Members: the model's own training images (at most the plugin's default 5,000). Non-members: 10,000 other images
of the MNIST *training* file (seeded, disjoint from the target's members; the plugin splits them per class into
calibration and held-out halves). Members and non-members are thus drawn from one distribution, as in the
membership-inference literature; the MNIST test set comes from other writers, and that shift is as large as the
signal being measured (a first version of this bench used it: docs/membership.md). The peer scores the same members
and the same held-out non-members; its AUC and TPR at 1% FPR are computed from its per-example scores with
scikit-learn (one global threshold chosen on the evaluation data, as auditml does). Rows already in
bench/results/membership.json with the same target, setting and options are kept (the 8-reference-model row alone
took 9 minutes); ``--force`` recomputes them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, trained, write_json
from membership_report import END, START, checks, render
from membership_targets import DP_N, dp_model, overfitted_cnn

from auditor.core.attack import RunContext
from auditor.core.results import AttackResult
from auditor.data.sets import AuditData, balanced_subset, load_images
from auditor.lab.presets import preset
from auditor.models.model import Preprocess
from auditor_membership import MembershipConfig, MembershipInference
from auditor_membership.attack import evaluation_split, resolve_primary
from auditor_membership.severity import SeverityRules, level

__all__ = ["END", "START", "render"]
log = logging.getLogger("bench.membership")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
RESULTS = Path(__file__).resolve().parent / "results" / "membership.json"
SCORES = ("loss", "confidence", "modified_entropy", "scaled_logit", "rmia", "lira")  # lira: with reference models only
ZOO_RECIPE = "zoo CNN (dropout 0.25/0.4, batch norm), Adam lr 1e-3, weight decay 1e-5, batch 64, {e} epochs"


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    n: int
    factory: str           # reference-model recipe: the target's architecture
    ref_epochs: int
    ref_size: int
    settings: tuple[str, ...]
    ref_budget_s: float | None = None   # reference_time_budget_s for more than 2 models (the plugin's 600 s fits 2 of these)


TARGETS = (
    Target("plain-cnn-1000", "Unregularised CNN, 1,000 images", 1000, "clone", 60, 1000,
           ("default", "default, one global threshold", "RMIA, 2 reference models", "RMIA, 8 reference models",
            "online LiRA, 8 shadow models", "online LiRA, 16 shadow models", "online LiRA, 8 shadow models, 4,000 non-members",
            "online LiRA, 8 shadow models, shifted queries", "online LiRA, 64 shadow models"), 2400.0),
    Target("zoo-cnn-1000", "Regularised CNN, 1,000 images", 1000, "auditor_membership.reference:cnn", 40, 1000,
           ("default", "RMIA, 2 reference models", "RMIA, 8 reference models")),
    Target("plain-cnn-10000", "Unregularised CNN, 10,000 images", 10000, "membership_targets:plain_cnn", 5, 2500,
           ("default", "online LiRA, 8 shadow models", "online LiRA, 64 shadow models"), 2400.0),
    Target("zoo-cnn-10000", "Regularised CNN, 10,000 images", 10000, "auditor_membership.reference:cnn", 10, 2500,
           ("default", "RMIA, 2 reference models")),
    Target(f"dp-tinycnn-{DP_N}", f"DP-SGD tinycnn-GN, {DP_N:,} images", DP_N, "auditor_membership.reference:tinycnn", 15, 2500,
           ("default", "RMIA, 2 reference models", "online LiRA, 8 shadow models", "online LiRA, 64 shadow models"), 2400.0),
)
# rows written before the targets had keys
LEGACY = {"CNN, 1,000 images": "zoo-cnn-1000", "CNN, 10,000 images": "zoo-cnn-10000", f"DP-SGD tinycnn-GN, {DP_N:,} images": f"dp-tinycnn-{DP_N}"}


def options_for(target: Target, setting: str) -> dict:
    if setting == "default":
        return {}
    if setting == "default, one global threshold":
        return {"per_class_thresholds": False}
    if setting.startswith("online LiRA, "):
        shifted = {"query_augmentations": "shifts"} if setting.endswith("shifted queries") else {}   # 9 queries, 1-pixel shifts
        return online_options(target, int(setting.split()[2]), 4000 if setting.endswith("4,000 non-members") else None) | shifted
    count = int(setting.split()[1])
    budget = {"reference_time_budget_s": target.ref_budget_s} if count > 2 and target.ref_budget_s else {}
    return {"reference_models": count, "reference_factory": target.factory, "reference_epochs": target.ref_epochs,
            "reference_train_size": target.ref_size, "reference_fit": "match"} | budget


# Online LiRA's pool: 1,000 members + about 2,000 non-members (shadows train on 1,500 images; the small target on 1,000). The
# per-class halving of 2,000 non-members leaves 999 held out for the 10,000-image and the DP targets (seed 0), one fewer than TPR
# at 0.1% FPR needs: 2,002 gives them 1,001 and 1,002 (checked with evaluation_split).
ONLINE_MEMBERS, ONLINE_REFERENCE = 1000, {"plain-cnn-1000": 2000}


def online_options(target: Target, count: int, reference: int | None = None) -> dict:
    """Online LiRA: ``count`` shadow models on random halves of a pool of 1,000 members + about 2,000 reference images (1,000
    calibrate, at least 1,000 held out: the fewest that support TPR at 0.1% FPR), 'match' fit, a budget of 300 s per model for
    the 1,000-image targets' long fits and 150 s for the others. ``reference``: another number of non-members (a pool of
    1,000 + ``reference``; the shadow models then train on half of that)."""
    return {"reference_mode": "online", "reference_models": count, "reference_factory": target.factory,
            "reference_epochs": target.ref_epochs, "reference_fit": "match", "max_members": ONLINE_MEMBERS,
            "max_reference": reference or ONLINE_REFERENCE.get(target.key, 2002), "reference_time_budget_s": (300.0 if target.n <= 1000 else 150.0) * count}


OUT_MODELS = {"offline": "one per pair", "online": "online: IN for half"}
NON_MEMBERS = "mnist-train-file"   # where the non-members come from (rows measured on the test set are recomputed)


def non_members(train, n_members: int, count: int = 10_000, seed: int = 12345):
    """``count`` images of the training file that are not among the target's members (balanced_subset(n, seed 0))."""
    taken = np.zeros(len(train), dtype=bool)
    taken[balanced_subset(train.labels.numpy(), n_members, 0)] = True
    rest = np.flatnonzero(~taken)
    return train.subset(np.sort(np.random.default_rng(seed).choice(rest, count, replace=False)))


def load(target: Target):
    """(classifier, members, facts about the target) from the cache, training what is missing."""
    if target.key.startswith("plain-"):
        model, members, info = overfitted_cnn(target.n, max_epochs=400 if target.n <= 1000 else 5)
        return model, members, {"recipe": info["recipe"], "epochs": info["epochs"], "train_s": info["train_s"],
                                "reached_target_loss": info["reached_target_loss"]}
    if target.key.startswith("dp-"):
        model, members, info = dp_model()
        return model, members, info | {"recipe": f"DP-SGD (Opacus), tinycnn with GroupNorm, {info['epochs']} epochs, ε = "
                                                  f"{info['epsilon']:.2f} at δ = {info['delta']:g}"}
    model, _, data = trained("mnist", "cnn", target.n)
    return model, data.members, {"recipe": ZOO_RECIPE.format(e=40 if target.n <= 1000 else max(5, 40_000 // target.n))}


@torch.no_grad()
def loss_stats(model, members, test) -> dict:
    """Mean and median cross-entropy and accuracy on the members and on all test images, through the query interface."""
    out = {}
    for part, images in (("member", members), ("test", test)):
        logits = torch.cat([model.logits(images.images[i:i + 1000]).double() for i in range(0, len(images), 1000)])
        loss = torch.nn.functional.cross_entropy(logits, images.labels, reduction="none").numpy()
        out |= {f"{part}_mean_loss": float(loss.mean()), f"{part}_median_loss": float(np.median(loss)),
                f"{part}_accuracy_all": float((logits.argmax(1) == images.labels).double().mean())}
    return out


def peer_auditml(net: torch.nn.Module, ds, members, non_members) -> dict:
    """auditml 0.1.0's ThresholdMIA (loss), on the same evaluation sets; metrics from its per-example scores."""
    from auditml.attacks.mia_threshold import ThresholdMIA
    from sklearn.metrics import roc_auc_score, roc_curve

    module = torch.nn.Sequential(Preprocess((0.0, 1.0), ds.mean, ds.std, channels_last=False), net).eval()

    def loader(images, labels):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=256, shuffle=False)

    start = time.monotonic()
    attack = ThresholdMIA(module, device="cpu", metric="loss")
    res = attack.run(loader(members.images, members.labels), loader(non_members.images, non_members.labels))
    seconds = time.monotonic() - start
    y, s = np.asarray(res.ground_truth), np.asarray(res.confidence_scores)
    fpr, tpr, _ = roc_curve(y, s)
    own = attack.evaluate() if hasattr(attack, "evaluate") else {}
    return {"peer": "auditml 0.1.0 ThresholdMIA(metric='loss')", "auc": float(roc_auc_score(y, s)),
            "tpr_at_1pct_fpr": float(tpr[fpr <= 0.01].max()), "tpr_at_0.1pct_fpr": float(tpr[fpr <= 0.001].max()),
            "accuracy_at_its_threshold": float(own.get("accuracy", float("nan"))), "seconds": round(seconds, 2)}


def audit(target: Target, model, members, ds, extra: dict, quick: bool, setting: str, with_peer: bool) -> dict:
    test = non_members(load_images(ds.train), target.n)   # the online rows use 2,000-4,000 of them (max_reference)
    if quick:
        test = test.subset(balanced_subset(test.labels.numpy(), 2000, 0))
    data = AuditData(members, test, 10, ds.class_names)
    options = options_for(target, setting)
    attack = MembershipInference(MembershipConfig(**options))
    start, load_average = time.monotonic(), os.getloadavg()[0]   # the 2-core machine is shared: times depend on it
    out = attack.run(model, data, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    (finding,) = attack.assess(AttackResult(attack="membership", status="completed", metrics=out.metrics))
    seconds = time.monotonic() - start
    mx = out.metrics
    # the peer sees exactly the plugin's evaluation sets: the same member subset and held-out split
    cfg = MembershipConfig()
    m_idx, r_idx, _, held = evaluation_split(len(members), test.labels.numpy(), cfg.max_members, cfg.max_reference,
                                             cfg.calibration_fraction, 0)
    peer = peer_auditml(model.network(), ds, members.subset(m_idx), test.subset(r_idx[held])) if with_peer else None
    row = {"target": target.key, "model": target.name, "setting": setting, "options": options, "non_members": NON_MEMBERS,
           "primary": resolve_primary(attack.config, int(mx["reference_models"])), "reference_models": int(mx["reference_models"]),
           "train_images": target.n, "train_accuracy": mx["members_accuracy"], "test_accuracy": mx["heldout_accuracy"],
           **extra, "members_scored": int(mx["members_scored"]), "heldout_scored": int(mx["heldout_scored"]),
           "severity": finding.severity.value, "finding": finding.title, "plugin_seconds": round(seconds, 2),
           "load_average_at_start": round(load_average, 1),
           "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "out_models": OUT_MODELS[options.get("reference_mode", "offline")]
           if options.get("reference_models") else None, "notes": out.notes}
    for key in ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low", "tpr_at_1pct_fpr_ci_high",
                "heldout_fpr_at_1pct", "tpr_at_0.1pct_fpr", "tpr_at_0.1pct_fpr_ci_low", "heldout_fpr_at_0.1pct", "balanced_accuracy"):
        row[key] = mx.get(key)
    rules = SeverityRules(fprs=cfg.severity_fprs, high_ratio=cfg.high_ratio, medium_ratio=cfg.medium_ratio, auc_high=cfg.auc_high,
                          auc_medium=cfg.auc_medium)
    row["per_score"] = {}
    for s in (s for s in SCORES if f"{s}_auc" in mx):
        own = {k.removeprefix(f"{s}_"): v for k, v in mx.items() if k.startswith(f"{s}_")}
        row["per_score"][s] = {k: own.get(k) for k in ("auc", "auc_ci_low", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low",
                                                       "heldout_fpr_at_1pct", "tpr_at_0.1pct_fpr")}
        row["per_score"][s]["severity_as_primary"] = level(own, rules)[0].value
    row["peer"] = peer
    row["table"] = {"columns": out.tables[0].columns, "rows": out.tables[0].rows}
    return row


def write_docs(payload: dict) -> None:
    section = render(payload)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[:text.index(START)] + section.rstrip("\n") + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def previous_rows() -> dict[tuple[str, str], dict]:
    """Rows of the last full run, keyed by (target, setting); legacy rows get their target key."""
    if not RESULTS.exists():
        return {}
    payload = json.loads(RESULTS.read_text())
    if payload.get("quick"):
        return {}
    out = {}
    for r in payload["rows"]:
        r.setdefault("target", LEGACY.get(r["model"], r["model"]))
        r.setdefault("created", payload["created"])
        out[(r["target"], r["setting"])] = r
    return out


def reusable(row: dict | None, options: dict) -> bool:
    """A stored row is kept when its options match and it has every per-score field, or it trained reference models
    (expensive; :func:`complete` fills in the per-score fields that only the first version of this bench left out)."""
    if row is None or row.get("options") != options or row.get("non_members") != NON_MEMBERS:
        return False
    return bool(row.get("reference_models")) or "severity_as_primary" in row["per_score"]["scaled_logit"]


def complete(row: dict, done: list[dict]) -> dict:
    """Per-score fields of a row from the first version: the threshold scores do not depend on the reference models, so they
    are the target's default row's; rmia is this row's primary."""
    default = next((r for r in done if r["target"] == row["target"] and r["setting"] == "default"), None)
    if "severity_as_primary" in row["per_score"]["scaled_logit"] or default is None:
        return row
    per_score = {s: dict(default["per_score"][s]) for s in SCORES[:4]}
    per_score["rmia"] = {k: row.get(k) for k in ("auc", "auc_ci_low", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low",
                                                 "heldout_fpr_at_1pct", "tpr_at_0.1pct_fpr")} | {"severity_as_primary": row["severity"]}
    return row | {"per_score": per_score}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the overfitted 1,000-image model only, default settings, 2,000 reference images")
    p.add_argument("--force", action="store_true", help="recompute rows that the JSON already holds")
    p.add_argument("--redo", action="append", default=[], metavar="TARGET:SETTING",
                   help="recompute one stored row, e.g. 'zoo-cnn-1000:RMIA, 2 reference models' (repeatable)")
    p.add_argument("--only", default="", help="comma-separated target keys to run (others are kept from the JSON)")
    p.add_argument("--docs", action="store_true", help="only regenerate the docs section from bench/results/membership.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("auditor_membership.reference").setLevel(logging.INFO)   # each reference model's epochs and time
    if args.docs:
        write_docs(json.loads(RESULTS.read_text()))
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    ds = preset("mnist")
    train = load_images(ds.train)
    old = {} if args.quick else previous_rows()
    only = set(filter(None, args.only.split(",")))
    targets = [(t, ("default",) if args.quick else t.settings) for t in (TARGETS[:1] if args.quick else TARGETS)]
    current, computed, extras = dict(old), {}, {}

    def save() -> dict:  # after every row, so that an interrupted run keeps what it measured
        # rows another --only run wrote meanwhile win over the ones this run merely reused; its own measurements win over all
        merged = current | ({} if args.quick else previous_rows()) | computed
        rows = [merged[(t.key, s)] | extras.get(t.key, {}) | {"model": t.name} for t, settings in targets for s in settings
                if (t.key, s) in merged]
        rows = [complete(r, rows) for r in rows]
        payload = {"quick": args.quick, "rows": rows, "checks": checks(rows)}
        write_json("membership_quick" if args.quick else "membership", payload)   # a quick run never replaces the full rows
        return payload

    for target, settings in targets:
        if only and target.key not in only:
            continue
        todo = [s for s in settings if args.force or f"{target.key}:{s}" in args.redo
                or not reusable(old.get((target.key, s)), options_for(target, s))]
        model, members, extra = load(target)
        extra |= loss_stats(model, members, non_members(train, target.n))
        extras[target.key] = extra
        for setting in settings:
            key = (target.key, setting)
            if setting in todo:
                computed[key] = audit(target, model, members, ds, extra, args.quick, setting, with_peer=setting == "default")
                log.warning("%s, %s: %s in %.0f s", target.name, setting, computed[key]["severity"], computed[key]["plugin_seconds"])
            else:
                current[key] = old[key] | extra | {"model": target.name}
            save()
    payload = save()
    rows = payload["rows"]
    path = RESULTS.with_name("membership_quick.json") if args.quick else RESULTS
    payload = json.loads(path.read_text())
    print(table([{k: (f"{v:.1%}" if isinstance(v, float) and k.startswith(("tpr", "heldout")) else v) for k, v in r.items()
                  if not isinstance(v, dict)} | ({"auditml_auc": r["peer"]["auc"], "auditml_tpr@1%": r["peer"]["tpr_at_1pct_fpr"]}
                                                 if r["peer"] else {})
                 for r in rows],
                ["model", "setting", "train_accuracy", "test_accuracy", "auc", "auc_ci_low", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low",
                 "heldout_fpr_at_1pct", "tpr_at_0.1pct_fpr", "severity", "plugin_seconds", "auditml_auc", "auditml_tpr@1%"]))
    print(f"checks: {payload['checks']}")
    if not args.quick:
        write_docs(payload)
    print(f"wrote {path}" + ("" if args.quick else f" and the membership section of {DOCS}"))


if __name__ == "__main__":
    main()
