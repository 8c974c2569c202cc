"""``audit run`` arguments and their translation into the configuration's raw dict; small parsing helpers."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="model source (model.onnx, model.pt2, timm:ARCH, factory:mod:fn, pickle:PATH) or an audit.toml")
    p.add_argument("--config", type=Path, help="audit.toml with [model], [data], [attacks.NAME], ...")
    p.add_argument("--plugins", help="comma-separated attacks to run (default: all installed)")
    p.add_argument("--set", action="append", default=[], metavar="NAME.key=value", help="override an attack option (repeatable)")
    p.add_argument("--members", help="member (training) data: IDX folder[:train|test], .npz, image folder, or digits[:train]")
    p.add_argument("--reference", help="non-member data from the same distribution (calibrates the scores)")
    p.add_argument("--members-limit", type=int, help="class-balanced subset of the members (the exact training subset)")
    p.add_argument("--reference-limit", type=int)
    p.add_argument("--subset-seed", type=int, help="seed of the class-balanced subset selection")
    p.add_argument("--class-names", help="comma-separated class names")
    p.add_argument("--weights", type=Path, help="state dict or .safetensors for timm:/factory: sources")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-shape", type=_ints, help="C,H,W")
    p.add_argument("--layout", choices=["auto", "NCHW", "NHWC"])
    p.add_argument("--input-range", type=_floats, help="lo,hi pixel range the model expects (e.g. 0,255)")
    p.add_argument("--mean", type=_floats)
    p.add_argument("--std", type=_floats)
    p.add_argument("--outputs", choices=["auto", "logits", "probabilities", "log-probabilities"])
    p.add_argument("--output-name", help="the graph output that holds the class scores, when an ONNX file has several")
    p.add_argument("--preflight-floor", type=float, help="lowest member accuracy for a meaningful audit (default max(0.3, chance+0.2))")
    p.add_argument("--accept-low-accuracy", action="store_true",
                   help="run the attacks although the model does not classify the members (the report says the audit is not meaningful)")
    p.add_argument("--accept-class-permutation", action="store_true",
                   help="use the class order the preflight found when it fits the data much better")
    p.add_argument("--trust-model", action="store_true", help="allow full-module pickles (runs code from the file)")
    p.add_argument("--out", type=Path, help="report folder (default audit-report)")
    p.add_argument("--fail-on", choices=["info", "low", "medium", "high", "never"], help="gate level (default high)")
    p.add_argument("--no-member-images", action="store_true", help="keep training images out of the report")
    p.add_argument("--junit", type=Path, help="also write JUnit XML")
    p.add_argument("--sarif", type=Path, help="also write SARIF")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--smoke", action="store_true", help="minimal iterations (checks the pipeline, not the model)")
    p.add_argument("--time-budget", type=float, help="seconds for the whole audit")
    p.add_argument("--attack-budget", type=float, help="default seconds per attack")
    p.add_argument("--disable-plugin", action="append", default=[], help="block a plugin by name (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="validate model, data and configuration; run nothing")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from auditor.engine.config import load_toml, parse_set

    raw: dict[str, Any] = {}
    toml_path = args.config
    if args.target.endswith(".toml"):
        toml_path = Path(args.target)
    if toml_path is not None:
        raw = load_toml(toml_path)
    model = dict(raw.get("model", {}))
    if not args.target.endswith(".toml"):
        model["source"] = args.target
    for key, value in (("weights", args.weights), ("num_classes", args.num_classes), ("input_shape", args.input_shape),
                       ("layout", args.layout), ("input_range", args.input_range), ("mean", args.mean), ("std", args.std),
                       ("outputs", args.outputs), ("output_name", args.output_name)):
        if value is not None:
            model[key] = value
    if args.trust_model:
        model["trust_model"] = True
    raw["model"] = model
    data = dict(raw.get("data", {}) or {})
    for key, value in (("members", args.members), ("reference", args.reference), ("members_limit", args.members_limit),
                       ("reference_limit", args.reference_limit), ("subset_seed", args.subset_seed)):
        if value is not None:
            data[key] = value
    if args.class_names:
        data["class_names"] = args.class_names.split(",")
    if data:
        raw["data"] = data
    run = dict(raw.get("run", {}))
    if args.plugins:
        run["plugins"] = [p.strip() for p in args.plugins.split(",") if p.strip()]
    for key, value in (("seed", args.seed), ("device", args.device), ("time_budget_s", args.time_budget),
                       ("attack_budget_s", args.attack_budget)):
        if value is not None:
            run[key] = value
    if args.smoke:
        run["smoke"] = True
    raw["run"] = run
    report = dict(raw.get("report", {}))
    if args.out is not None:
        report["out"] = str(args.out)
    if args.fail_on is not None:
        report["fail_on"] = None if args.fail_on == "never" else args.fail_on
    if args.no_member_images:
        report["member_images"] = False
    for key in ("junit", "sarif"):
        if getattr(args, key) is not None:
            report[key] = str(getattr(args, key))
    raw["report"] = report
    preflight = dict(raw.get("preflight", {}))
    for key, value in (("floor", args.preflight_floor), ("accept_low_accuracy", args.accept_low_accuracy or None),
                       ("accept_class_permutation", args.accept_class_permutation or None)):
        if value is not None:
            preflight[key] = value
    if preflight:
        raw["preflight"] = preflight
    attacks = dict(raw.get("attacks", {}))
    for name, values in parse_set(args.set).items():
        attacks[name] = {**attacks.get(name, {}), **values}
    raw["attacks"] = attacks
    return raw


def one_line(text: str) -> str:
    """Text from models and data on one printable line: no newlines, no terminal escape sequences."""
    text = "".join(c if c.isprintable() or c.isspace() else c.encode("unicode_escape").decode("ascii") for c in text)
    return " ".join(text.split())
