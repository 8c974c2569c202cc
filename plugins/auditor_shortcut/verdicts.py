"""Plain-language findings of the shortcut study, with the measured numbers, whichever way they fall."""
from __future__ import annotations

from auditor_shortcut.experiment import CellResult, InversionCell


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


TIE = 0.03  # differences of mean drop below this are called ties (one seed per cell)


def _nanmean(values: list[float]) -> float:
    return _mean([v for v in values if v == v])


def study_findings(rows: list[CellResult], inversions: list[InversionCell], num_classes: int = 10) -> list[str]:
    """The paper's claims tested against the measurements (ViT most, CNN least, no pos-embedding more, higher lr more)."""
    out: list[str] = []
    chance = 1.5 / max(num_classes, 2)
    failed = [r for r in rows if r.acc_with < chance + 0.1]
    for r in failed:
        out.append(f"{r.arch} at lr {r.lr:g} did not learn (accuracy {r.acc_with:.2f} even with the shortcut); "
                   "it is left out of the comparisons below.")
    ok = [r for r in rows if r not in failed]
    archs = list(dict.fromkeys(r.arch for r in ok))
    drop = {a: _mean([r.drop for r in ok if r.arch == a]) for a in archs}
    if not drop:
        return out + ["No model learned the task; nothing to compare."]
    ranking = sorted(drop, key=lambda a: -drop[a])
    relative = {a: _mean([r.relative_drop for r in ok if r.arch == a]) for a in archs}
    out.append("Mean reliance (accuracy with the shortcut minus without, averaged over learning rates): "
               + ", ".join(f"{a} {drop[a]:.2f}" for a in ranking) + "; as a share of the accuracy with the shortcut: "
               + ", ".join(f"{a} {relative[a]:.0%}" for a in sorted(relative, key=lambda a: -relative[a])) + ".")
    vits = [a for a in ("vit", "vit_nopos") if a in drop]
    others = [a for a in ("mlp", "cnn") if a in drop]
    if vits and others:
        top_vit = max(drop[a] for a in vits)
        verdict = "consistent with" if top_vit > max(drop[a] for a in others) else "unlike"
        out.append(f"ViTs rely on the shortcut most: {verdict} the paper (largest ViT drop {top_vit:.2f} vs "
                   + ", ".join(f"{a} {drop[a]:.2f}" for a in others) + ").")
    if "cnn" in drop and len(drop) > 1:
        order = sorted(drop, key=lambda a: drop[a])
        if order[0] == "cnn":
            out.append(f"CNNs rely on it least: consistent with the paper (cnn {drop['cnn']:.2f}; next lowest {order[1]} "
                       f"{drop[order[1]]:.2f}).")
        else:
            out.append(f"CNNs rely on it least: unlike the paper (least: {order[0]} {drop[order[0]]:.2f}; cnn {drop['cnn']:.2f}).")
    if "vit" in drop and "vit_nopos" in drop:
        diff = drop["vit_nopos"] - drop["vit"]
        if abs(diff) < TIE:
            out.append(f"Without positional embedding the ViT relied about as much on the shortcut ({drop['vit_nopos']:.2f} vs "
                       f"{drop['vit']:.2f}, a difference below {TIE}); the paper reports more.")
        else:
            more = diff > 0
            out.append(f"Without positional embedding the ViT relied {'more' if more else 'less'} on the shortcut "
                       f"({drop['vit_nopos']:.2f} vs {drop['vit']:.2f}): {'consistent with' if more else 'unlike'} the paper.")
    lrs = sorted(dict.fromkeys(r.lr for r in ok))
    if len(lrs) > 1:
        changes = []
        for a in archs:
            own = sorted((r for r in ok if r.arch == a), key=lambda r: r.lr)
            if len(own) > 1:
                changes.append((a, own[0], own[-1]))
        up = [c for c in changes if c[2].drop > c[1].drop]
        out.append(f"Higher learning rates increased reliance for {len(up)} of {len(changes)} architectures "
                   f"({'consistent with' if 2 * len(up) > len(changes) else 'unlike'} the paper): "
                   + ", ".join(f"{a} {lo.drop:.2f} at lr {lo.lr:g} → {hi.drop:.2f} at lr {hi.lr:g}" for a, lo, hi in changes) + ".")
    follow = {a: _mean([r.follows_patch for r in ok if r.arch == a]) for a in archs}
    out.append("With another class's patch pasted in, the prediction follows the patch for "
               + ", ".join(f"{a} {follow[a]:.0%}" for a in archs) + " of test images (mean over learning rates).")
    probed = [r for r in ok if r.probe_found >= 0]
    if probed:
        high = sum(r.probe_hijacked > 0 for r in probed)
        found = {a: _mean([r.probe_found for r in probed if r.arch == a]) for a in archs if any(r.arch == a for r in probed)}
        out.append(f"The audit probe, given only clean images, flags {high} of {len(probed)} models high (max pull "
                   f"{min(r.probe_max_pull for r in probed):.2f} to {max(r.probe_max_pull for r in probed):.2f}) and locates the "
                   f"planted patch within one grid cell for, of {num_classes} classes on average: "
                   + ", ".join(f"{a} {v:.1f}" for a, v in found.items())
                   + " (where it misses, it found a patch elsewhere that pulls the class at least as strongly on its search images).")
    if inversions:
        out.append("Inversion: the planted patch is drawn (presence ≥ 0.5) for "
                   + ", ".join(f"{inv.arch} {sum(p >= 0.5 for p in inv.presence)}/{len(inv.presence)} classes "
                               f"(mean presence {_nanmean(inv.presence):.2f} at the class's own spot, "
                               f"{_nanmean(inv.control):.2f} at other classes' spots; hit rate {inv.hit_rate:.0%})"
                               for inv in inversions) + ".")
    return out
