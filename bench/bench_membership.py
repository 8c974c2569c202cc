"""Membership inference: the builtin `membership` plugin on MNIST CNNs of 1,000 and 10,000 images and a DP-SGD control,
side by side with auditml's threshold attack (the peer) on the same models and the same evaluation sets.

    python bench/bench_membership.py            # trains (cached under bench/cache/) and audits the three models
    python bench/bench_membership.py --quick    # the 1,000-image model only, smaller reference set
    python bench/bench_membership.py --docs     # only rewrite the generated section of docs/benchmarks.md from the JSON

Members: the model's own training images (at most the plugin's default 5,000). Non-members: the MNIST test set
(10,000; the plugin splits it per class into calibration and held-out halves). The peer scores the same members
and the same held-out non-members; its AUC and TPR at 1% FPR are computed from its per-example scores with
scikit-learn (one global threshold chosen on the evaluation data, as auditml does).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, table, trained, write_json

from auditor.core.attack import RunContext
from auditor.core.results import AttackResult
from auditor.data.sets import AuditData, balanced_subset, load_images
from auditor.lab import zoo
from auditor.lab.presets import preset
from auditor.models.model import Preprocess, from_module
from auditor_membership import MembershipConfig, MembershipInference
from auditor_membership.attack import evaluation_split

log = logging.getLogger("bench.membership")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
RESULTS = Path(__file__).resolve().parent / "results" / "membership.json"
START, END = "<!-- bench_membership:start -->", "<!-- bench_membership:end -->"
DP_EPSILON, DP_DELTA, DP_N = 8.0, 1e-5, 5000


def dp_model(epochs: int = 15):
    """The zoo's tinycnn with BatchNorm replaced by GroupNorm (Opacus' validator), trained with DP-SGD to ε = 8, δ = 1e-5."""
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    ds = preset("mnist")
    train = load_images(ds.train)
    members = train.subset(balanced_subset(train.labels.numpy(), DP_N, 0))
    net = ModuleValidator.fix(zoo.build("tinycnn", members.image_shape, 10))
    path = CACHE / f"mnist-tinycnn-gn-dp{DP_EPSILON:g}-{DP_N}-s0.pt"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        info = json.loads(meta.read_text())
    else:
        torch.manual_seed(0)
        mean, std = torch.tensor(ds.mean).view(1, -1, 1, 1), torch.tensor(ds.std).view(1, -1, 1, 1)
        x = (members.images - mean) / std
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, members.labels), batch_size=256, shuffle=True,
                                             generator=torch.Generator().manual_seed(0))
        optimiser = torch.optim.SGD(net.parameters(), lr=1.0, momentum=0.9)
        engine = PrivacyEngine(accountant="rdp")
        model, optimiser, loader = engine.make_private_with_epsilon(module=net.train(), optimizer=optimiser, data_loader=loader,
                                                                    target_epsilon=DP_EPSILON, target_delta=DP_DELTA, epochs=epochs,
                                                                    max_grad_norm=1.0)
        start = time.monotonic()
        for _ in range(epochs):
            for xb, yb in loader:
                if len(yb) == 0:
                    continue
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        info = {"epsilon": float(engine.get_epsilon(DP_DELTA)), "delta": DP_DELTA, "epochs": epochs,
                "noise_multiplier": float(optimiser.noise_multiplier), "max_grad_norm": 1.0, "train_s": time.monotonic() - start}
        net = model._module if hasattr(model, "_module") else model
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
        meta.write_text(json.dumps(info))
    net.eval()
    classifier = from_module(net, num_classes=10, input_shape=members.image_shape, mean=ds.mean, std=ds.std, source=f"bench:{path.stem}")
    return classifier, members, info


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


def audit(name: str, model, members, ds, n_train: int, extra: dict, quick: bool, setting: str = "default",
          options: dict | None = None, with_peer: bool = True) -> dict:
    test = load_images(ds.test)
    if quick:
        test = test.subset(balanced_subset(test.labels.numpy(), 2000, 0))
    data = AuditData(members, test, 10, ds.class_names)
    attack = MembershipInference(MembershipConfig(**(options or {})))
    start = time.monotonic()
    out = attack.run(model, data, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
    (finding,) = attack.assess(AttackResult(attack="membership", status="completed", metrics=out.metrics))
    seconds = time.monotonic() - start
    mx = out.metrics
    # the peer sees exactly the plugin's evaluation sets: the same member subset and held-out split
    cfg = MembershipConfig()
    m_idx, r_idx, _, held = evaluation_split(len(members), test.labels.numpy(), cfg.max_members, cfg.max_reference,
                                             cfg.calibration_fraction, 0)
    peer = peer_auditml(model.network(), ds, members.subset(m_idx), test.subset(r_idx[held])) if with_peer else None
    row = {"model": name, "setting": setting, "options": options or {}, "primary": "rmia" if mx["reference_models"] else "scaled_logit",
           "reference_models": int(mx["reference_models"]), "train_images": n_train, "train_accuracy": mx["members_accuracy"], "test_accuracy": mx["heldout_accuracy"],
           **extra, "members_scored": int(mx["members_scored"]), "heldout_scored": int(mx["heldout_scored"]),
           "severity": finding.severity.value, "finding": finding.title, "plugin_seconds": round(seconds, 2)}
    for key in ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low", "tpr_at_1pct_fpr_ci_high",
                "heldout_fpr_at_1pct", "tpr_at_0.1pct_fpr", "tpr_at_0.1pct_fpr_ci_low", "heldout_fpr_at_0.1pct", "balanced_accuracy"):
        row[key] = mx.get(key)
    row["per_score"] = {s: {"auc": mx.get(f"{s}_auc"), "tpr_at_1pct_fpr": mx.get(f"{s}_tpr_at_1pct_fpr"),
                            "tpr_at_0.1pct_fpr": mx.get(f"{s}_tpr_at_0.1pct_fpr")}
                        for s in ("loss", "confidence", "modified_entropy", "scaled_logit", "rmia")}
    row["peer"] = peer
    row["table"] = {"columns": out.tables[0].columns, "rows": out.tables[0].rows}
    return row


def render(payload: dict, heading: bool = True) -> str:
    """The markdown section for docs/benchmarks.md, from the JSON only (``heading=False``: run_all writes its own)."""
    rows = payload["rows"]

    def pct(v):
        return "–" if v is None else f"{v:.1%}"

    lines = [START] + (["## 6. Membership inference: the `membership` plugin vs auditml's threshold attack", ""] if heading else []) + [
             f"`python bench/bench_membership.py{' --quick' if payload['quick'] else ''}` ({payload['created']}). Members: each "
             "model's own training images (at most 5,000); non-members: the MNIST test set, split per class into calibration "
             "(thresholds, RMIA population) and held-out halves. Primary score: LiRA's scaled logit with per-class thresholds "
             "(declared in advance). Brackets: 95% intervals (AUC: bootstrap; TPR: exact Clopper-Pearson). The peer, auditml "
             "0.1.0's `ThresholdMIA(metric='loss')`, scores the same members and held-out non-members; its AUC and TPR come from "
             "its per-example scores with one global threshold chosen on the evaluation data (optimistic).", "",
             "| model | setting (primary) | train / test acc | AUC [95% CI] | TPR @ 1% FPR [95% CI] | held-out FPR | TPR @ 0.1% FPR | "
             "severity | plugin time | auditml AUC | auditml TPR @ 1% FPR |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peer = r["peer"] or {}
        tail = f"{peer['auc']:.3f} | {pct(peer['tpr_at_1pct_fpr'])} |" if peer else "as above | as above |"
        lines.append(f"| {r['model']} | {r['setting']} ({r['primary']}) | {r['train_accuracy']:.3f} / {r['test_accuracy']:.3f} | "
                     f"{r['auc']:.3f} [{r['auc_ci_low']:.3f}, {r['auc_ci_high']:.3f}] | {pct(r['tpr_at_1pct_fpr'])} "
                     f"[{pct(r['tpr_at_1pct_fpr_ci_low'])}, {pct(r['tpr_at_1pct_fpr_ci_high'])}] | {pct(r['heldout_fpr_at_1pct'])} | "
                     f"{pct(r['tpr_at_0.1pct_fpr'])} | **{r['severity']}** | {r['plugin_seconds']:.1f} s | " + tail)
    lines += ["", "AUC of every score (global threshold sweep):", "",
              "| model | setting | loss | confidence | modified entropy | scaled logit | RMIA |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ps = r["per_score"]
        lines.append(f"| {r['model']} | {r['setting']} | " + " | ".join(f"{ps[s]['auc']:.3f}" for s in ("loss", "confidence", "modified_entropy",
                                                                                     "scaled_logit", "rmia")) + " |")
    lines += ["", "Settings: *default* is the plugin's defaults (no reference models; primary `scaled_logit`). *RMIA, k reference "
                  "models* trains k models of the target's architecture (the DP control: the same tinycnn with BatchNorm, without "
                  "DP) on complementary halves of the calibration non-members, at most the target's training-set size each, and "
                  "makes `rmia` primary; only `rmia` changes between the settings (8 reference models: the 1,000-image model only, to show "
                  "how far more reference models take the attack). Reference-model training time is included "
                  "in the plugin time."]
    dp = next((r for r in rows if r.get("epsilon") is not None), None)
    if dp:
        lines += ["", f"DP-SGD control: Opacus, ε = {dp['epsilon']:.2f} at δ = {dp['delta']:g} (RDP accountant), noise multiplier "
                      f"{dp['noise_multiplier']:.2f}, clipping 1.0, {dp['epochs']} epochs; architecture: the zoo's `tinycnn` with "
                      "BatchNorm replaced by GroupNorm (Opacus' `ModuleValidator.fix`)."]
    lines += ["", f"Goal checks: {payload['checks']}", END]
    return "\n".join(lines) + "\n"


def write_docs(payload: dict) -> None:
    section = render(payload)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[:text.index(START)] + section.rstrip("\n") + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the 1,000-image model only, 2,000 reference images")
    p.add_argument("--docs", action="store_true", help="only regenerate the docs section from bench/results/membership.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.docs:
        write_docs(json.loads(RESULTS.read_text()))
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    ds = preset("mnist")
    rows = []
    models = []
    for n in ((1000,) if args.quick else (1000, 10000)):
        model, _, data = trained("mnist", "cnn", n)
        models.append((f"CNN, {n:,} images", model, data.members, n, {}, "cnn", 40 if n <= 1000 else 10, min(n, 2500)))
    if not args.quick:
        model, members, info = dp_model()
        models.append((f"DP-SGD tinycnn-GN, {DP_N:,} images", model, members, DP_N, info, "tinycnn", info["epochs"], 2500))
    for name, model, members, n, extra, recipe, epochs, size in models:
        rows.append(audit(name, model, members, ds, n, extra, args.quick))
        log.warning("%s: default done (%s)", name, rows[-1]["severity"])
        for count in (() if args.quick else (2, 8) if n == 1000 else (2,)):  # 8: how far more reference models go, on the 1k model
            options = {"reference_models": count, "reference_factory": f"auditor_membership.reference:{recipe}", "reference_epochs": epochs,
                       "reference_train_size": size}
            rows.append(audit(name, model, members, ds, n, extra, args.quick, f"RMIA, {count} reference models", options, with_peer=False))
            log.warning("%s: %d reference models done (%s)", name, count, rows[-1]["severity"])
    by = {(r["train_images"], r["setting"]): r for r in rows}
    default, strong = "default", "RMIA, 2 reference models"
    checks = {"cnn1000_under_60s_default": by[(1000, default)]["plugin_seconds"] < 60}
    top = next(s for s in ("RMIA, 8 reference models", strong, default) if (1000, s) in by)
    checks["cnn1000_setting_for_high_check"] = top
    checks["cnn1000_high"] = by[(1000, top)]["severity"] == "high" and (by[(1000, top)]["tpr_at_1pct_fpr"] or 0) > 0.05
    for setting in (default, strong):
        if (10000, setting) in by:
            a, b = by[(1000, setting)], by[(10000, setting)]
            checks[f"cnn10000_lower[{setting}]"] = b["auc"] < a["auc"] and (b["tpr_at_1pct_fpr"] or 0) <= (a["tpr_at_1pct_fpr"] or 0)
        if (DP_N, setting) in by:
            dp = by[(DP_N, setting)]
            checks[f"dp_at_most_low[{setting}]"] = dp["severity"] in ("info", "low")
    dp = by.get((DP_N, default))
    if dp:
        checks["dp_epsilon_le_8"] = dp["epsilon"] <= 8.0 + 1e-6
        checks["dp_accuracy_above_0.3"] = dp["test_accuracy"] > 0.3
    payload = {"quick": args.quick, "rows": rows, "checks": checks}
    path = write_json("membership", payload)
    payload = json.loads(path.read_text())
    print(table([{k: (f"{v:.1%}" if isinstance(v, float) and k.startswith(("tpr", "heldout")) else v) for k, v in r.items()
                  if not isinstance(v, dict)} | ({"auditml_auc": r["peer"]["auc"], "auditml_tpr@1%": r["peer"]["tpr_at_1pct_fpr"]}
                                                 if r["peer"] else {})
                 for r in rows],
                ["model", "setting", "train_accuracy", "test_accuracy", "auc", "auc_ci_low", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low",
                 "heldout_fpr_at_1pct", "tpr_at_0.1pct_fpr", "severity", "plugin_seconds", "auditml_auc", "auditml_tpr@1%"]))
    print(f"checks: {checks}")
    write_docs(payload)
    print(f"wrote {path} and the membership section of {DOCS}")


if __name__ == "__main__":
    main()
