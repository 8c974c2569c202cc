"""The goal checks and the generated docs section of bench_membership.py, from its JSON only."""
from __future__ import annotations

START, END = "<!-- bench_membership:start -->", "<!-- bench_membership:end -->"
SCORES = ("loss", "confidence", "modified_entropy", "scaled_logit", "rmia", "lira")


def checks(rows: list[dict]) -> dict:
    """The issue's bars, each on the rows that measure it (absent rows: the check is left out, not passed)."""
    by = {(r["target"], r["setting"]): r for r in rows}
    out: dict = {}
    d = by.get(("plain-cnn-1000", "default"))
    if d:
        out["overfitted1000_under_60s_default"] = d["plugin_seconds"] < 60
    for (target, setting), r in by.items():
        if target == "plain-cnn-1000":
            out[f"overfitted1000_tpr1pct_ci_low_above_2x_fpr[{setting}]"] = (r["tpr_at_1pct_fpr_ci_low"] or 0) > 0.02
            out[f"overfitted1000_high[{setting}]"] = r["severity"] == "high"
    for small, large in (("plain-cnn-1000", "plain-cnn-10000"), ("zoo-cnn-1000", "zoo-cnn-10000")):
        for setting in ("default", "RMIA, 2 reference models", "online LiRA, 8 shadow models", "online LiRA, 8 shadow models, shifted queries"):
            a, b = by.get((small, setting)), by.get((large, setting))
            if a and b:
                out[f"{large}_lower[{setting}]"] = b["auc"] < a["auc"] and (b["tpr_at_1pct_fpr"] or 0) <= (a["tpr_at_1pct_fpr"] or 0)
    for (target, setting), r in by.items():
        if target.startswith("dp-"):
            out[f"dp_at_most_low[{setting}]"] = r["severity"] in ("info", "low")
            if setting == "default":
                out["dp_epsilon_le_8"] = r["epsilon"] <= 8.0 + 1e-6
    return out


def _pct(v) -> str:
    return "–" if v is None else f"{v:.1%}"


def _low01(r: dict) -> str:
    low, fpr = r.get("tpr_at_0.1pct_fpr_ci_low"), r.get("heldout_fpr_at_0.1pct")
    return "" if low is None or fpr is None else f" (≥ {low:.1%}; {fpr:.2%})"


def _training(rows: list[dict]) -> list[str]:
    lines = ["Targets (losses and accuracies measured by the bench on the model's own training images and on the 10,000 "
             "non-members of the training file):", "",
             "| model | recipe | member loss mean / median | non-member loss mean / median | member / non-member acc |",
             "|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        if r.get("target") in seen or "member_mean_loss" not in r:
            continue
        seen.add(r.get("target"))
        reached = {True: "; reached", False: "; **not reached**"}.get(r.get("reached_target_loss"), "")
        epochs = f" → {r['epochs']} epochs{reached}" if "reached_target_loss" in r else ""
        lines.append(f"| {r['model']} | {r.get('recipe', '')}{epochs} | {r['member_mean_loss']:.2g} / {r['member_median_loss']:.2g} | "
                     f"{r['test_mean_loss']:.2g} / {r['test_median_loss']:.2g} | {r['train_accuracy']:.3f} / {r['test_accuracy']:.3f} |")
    return lines


def render(payload: dict, heading: bool = True) -> str:
    """The markdown section for docs/benchmarks.md (``heading=False``: run_all writes its own)."""
    rows = payload["rows"]
    lines = [START] + (["## 6. Membership inference: the `membership` plugin vs auditml's threshold attack", ""] if heading else []) + [
             f"`python bench/bench_membership.py{' --quick' if payload['quick'] else ''}` (rows resumed from earlier runs keep their "
             f"own dates; this file: {payload['created']}). Members: each model's own training images (at most 5,000); non-members: "
             "10,000 other images of the MNIST training file (one distribution with the members), split per class into calibration "
             "(thresholds, RMIA population) and held-out halves. Severity reads TPR at 1% and 0.1% FPR. Primary score: "
             "LiRA's scaled logit without reference models, RMIA with them (declared in advance). Brackets: 95% intervals (AUC: "
             "bootstrap; TPR: exact Clopper-Pearson). The peer, auditml 0.1.0's `ThresholdMIA(metric='loss')`, scores the same "
             "members and held-out non-members; its AUC and TPR come from its per-example scores with one global threshold chosen "
             "on the evaluation data (optimistic).", ""]
    lines += _training(rows) + [""]
    lines += ["| model | setting (primary) | AUC [95% CI] | TPR @ 1% FPR [95% CI] | held-out FPR | TPR @ 0.1% FPR (≥ lower bound; held-out FPR) | "
              "severity | plugin time | auditml AUC | auditml TPR @ 1% FPR |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peer = r["peer"] or {}
        online = r.get("options", {}).get("reference_mode") == "online"   # other evaluation sets than the default row's
        tail = f"{peer['auc']:.3f} | {_pct(peer['tpr_at_1pct_fpr'])} |" if peer else ("– | – |" if online else "as above | as above |")
        stale = "†" if r.get("reference_models") and r.get("out_models") not in ("one per pair", "online: IN for half") else ""
        asked = r.get("options", {}).get("reference_models")
        stale += f" (only {r['reference_models']} trained within the budget)" if asked and r["reference_models"] != asked else ""
        lines.append(f"| {r['model']} | {r['setting']}{stale} ({r['primary']}) | "
                     f"{r['auc']:.3f} [{r['auc_ci_low']:.3f}, {r['auc_ci_high']:.3f}] | {_pct(r['tpr_at_1pct_fpr'])} "
                     f"[{_pct(r['tpr_at_1pct_fpr_ci_low'])}, {_pct(r['tpr_at_1pct_fpr_ci_high'])}] | {_pct(r['heldout_fpr_at_1pct'])} | "
                     f"{_pct(r['tpr_at_0.1pct_fpr'])}{_low01(r)} | **{r['severity']}** | {r['plugin_seconds']:.1f} s"
                     + (f" (load {r['load_average_at_start']:g})" if r.get("load_average_at_start") is not None else "") + " | " + tail)
    lines += ["", "Every score of every row: AUC, and TPR at 1% FPR (per-class thresholds unless the setting says otherwise) "
                  "with its lower 95% bound; the level is what the severity rules would give that score had it been declared "
                  "primary (only the primary's level is reported by the plugin; the others are shown to find the bottleneck).", "",
              "| model | setting | " + " | ".join(SCORES) + " |", "|---|---|" + "---|" * len(SCORES)]
    for r in rows:
        cells = []
        for s in SCORES:
            if s not in r["per_score"]:
                cells.append("–")
                continue
            ps = r["per_score"][s]
            low = ps.get("tpr_at_1pct_fpr_ci_low")
            cells.append(f"{ps['auc']:.3f}; {_pct(ps['tpr_at_1pct_fpr'])}" + (f" (≥ {_pct(low)})" if low is not None else "")
                         + (f"; {ps['severity_as_primary']}" if ps.get("severity_as_primary") else ""))
        lines.append(f"| {r['model']} | {r['setting']} | " + " | ".join(cells) + " |")
    lines += ["", "Settings: *default* is the plugin's defaults (no reference models; primary `scaled_logit`, per-class thresholds). "
                  "*one global threshold* sets `per_class_thresholds = false`. *RMIA, k reference models* trains k models of the "
                  "target's architecture (the DP control: the same tinycnn with BatchNorm, without DP; the unregularised CNN: "
                  "`reference_factory = \"clone\"`, the target's own network re-initialised) on complementary halves of the calibration non-members, at "
                  "most the target's training-set size each, and makes `rmia` primary; only `rmia` and `lira` change between the settings. "
                  "*online LiRA, k shadow models* (`reference_mode = \"online\"`) scores 1,000 members (`max_members`) against 2,000 "
                  "non-members (`max_reference`; 2,002 for the 10,000-image and DP targets, where the seeded per-class halving of 2,000 "
                  "leaves 999 held out, one fewer than 0.1% FPR needs: about 1,000 calibrate, at least 1,000 are held out) and trains k "
                  "models of the same architecture in pairs on complementary random halves of that pool of about 3,000 (1,500 images "
                  "each; the *4,000 non-members* row: a pool of 5,000, 2,500 images each), members and non-members alike, so every "
                  "scored image is IN for half of them; `lira` (online LiRA's likelihood ratio, global variances) is primary and `rmia` "
                  "uses all k models; the thresholds still come from the calibration non-members and the FPR from the held-out ones. "
                  "*shifted queries* (`query_augmentations = \"shifts\"`): the target and every shadow model are also queried on the "
                  "8 one-pixel translations of each image (zero padding), with one IN/OUT Gaussian fit per query and the 9 log "
                  "likelihood ratios summed (`rmia` keeps the unshifted query). "
                  "Reference-model training time is included in the plugin time; *load*: the machine's 1-minute load average "
                  "when the row started (2 cores, shared; the earliest rows did not record it). †: measured before every scored example used "
                  "one OUT model per pair (it averaged all OUT models, which made the calibration scores noisier than the "
                  "held-out ones, see docs/membership.md); not re-run for lack of time."]
    dp = next((r for r in rows if r.get("epsilon") is not None), None)
    if dp:
        lines += ["", f"DP-SGD control: Opacus, ε = {dp['epsilon']:.2f} at δ = {dp['delta']:g} (RDP accountant), noise multiplier "
                      f"{dp['noise_multiplier']:.2f}, clipping 1.0, {dp['epochs']} epochs; architecture: the zoo's `tinycnn` with "
                      "BatchNorm replaced by GroupNorm (Opacus' `ModuleValidator.fix`)."]
    lines += ["", f"Goal checks: {payload['checks']}", END]
    return "\n".join(lines) + "\n"
