"""`r1desk classify`: classifier scores and the decision the current policy would take.

For admins calibrating thresholds. Also manages the Detoxify weights:
``--status``, ``--download-weights TYPE``, ``--import-weights TYPE CHECKPOINT CONFIG_DIR``.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from r1desk.errors import ClassifierUnavailableError, UserFacingError
from r1desk.textsafe import printable, safe_json

if TYPE_CHECKING:
    from r1desk.core.guard.policy import Decision
    from r1desk.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("classify", help="score text with the guard classifiers and show the policy's "
                                               "decision; manage classifier weights")
    p.add_argument("--text", "-t", help="text to score (default: read standard input)")
    p.add_argument("--channel", choices=("prompt", "thinking", "answer"), default="answer",
                   help="whose policy to apply (default: answer)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("--model-type", help="Detoxify model type (default: from the settings)")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--status", action="store_true", help="list installed and missing classifier weights")
    weights.add_argument("--download-weights", metavar="TYPE", help="download Detoxify weights for TYPE")
    weights.add_argument("--import-weights", nargs=3, metavar=("TYPE", "CHECKPOINT", "CONFIG_DIR"),
                         help="install Detoxify weights from a .ckpt and a folder with the base model's "
                              "HF config and tokenizer files")
    weights.add_argument("--import-onnx", nargs=2, metavar=("TYPE", "ONNX_DIR"),
                         help="install Detoxify weights already converted to ONNX (the onnx folder made by "
                              "`python -m r1desk.core.guard.onnx_export`; no PyTorch needed)")
    p.set_defaults(func=run)


def _weights_status(args: argparse.Namespace) -> int:
    from r1desk.core.guard import weights

    rows = [weights.status(t) for t in weights.MODEL_TYPES]
    if args.json:
        print(json.dumps([{"model_type": r.model_type, "installed": r.installed, "folder": str(r.folder),
                           "missing": list(r.missing)} for r in rows], indent=2))
    else:
        for r in rows:
            print(f"{r.model_type:15} {'installed' if r.installed else 'missing: ' + ', '.join(r.missing)}")
    return 0


def _progress(what: str, done: int, total: int | None) -> None:
    if total:
        print(f"\r{what}: {done / total:6.1%} of {total / 1e6:.0f} MB", end="", file=sys.stderr, flush=True)
    else:
        print(f"\r{what}: {done / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from r1desk.core.guard import weights
    from r1desk.settings import load_settings

    if args.status:
        return _weights_status(args)
    if args.download_weights:
        st = weights.download_weights(args.download_weights, progress=_progress)
        print(file=sys.stderr)
        print(st.message())
        return 0
    if args.import_onnx:
        from r1desk.core.guard.detoxify_onnx import import_onnx

        model_type, folder = args.import_onnx
        print(f"Detoxify '{model_type}' (ONNX) installed in {import_onnx(model_type, folder)}")
        return 0
    if args.import_weights:
        model_type, ckpt, config_dir = args.import_weights
        st = weights.import_weights(model_type, ckpt, config_dir, convert=True)  # + ONNX, once
        print(st.message())
        return 0

    text = args.text if args.text is not None else sys.stdin.read()
    if not text.strip():
        raise UserFacingError("nothing to classify: pass --text or pipe text on standard input")
    settings = load_settings()
    return _classify(text, settings, args)


def _classify(text: str, settings: Settings, args: argparse.Namespace) -> int:
    """Every registered classifier judges the text through the guard pipeline (the path a turn takes).
    Without any usable content classifier it still reports the language and each classifier's status,
    then exits 2 (a check that judged nothing never reads as "allow")."""
    from r1desk.core.guard.classifier import REGISTRY, Granularity, Item, State
    from r1desk.core.guard.langid import LangId, detect_language
    from r1desk.core.guard.pipeline import GuardPipeline, strongest_action

    config = settings.guard_config()
    if args.model_type:
        config = replace(config, model_type=args.model_type)
    langid = LangId()
    classifiers = REGISTRY.build(config)
    pipe = GuardPipeline.from_config(config, classifiers, langid, target_language="off")
    status = pipe.prepare()
    decisions = pipe.classify(args.channel, text)
    code, probability = detect_language(pipe.langid, text) if pipe.langid is not None else (None, 0.0)
    judged: dict[str, dict[str, object]] = {}
    whole: dict[str, float] = {}        # every classifier's scores in one map (a later one wins a shared label)
    for c in classifiers:
        if status.state_of(c.name) is not State.ACTIVE or c.granularity is Granularity.TURN:
            continue
        judgement = c.judge([Item(args.channel, text, code)])[0]
        scores = {k: round(v, 6) for k, v in judgement.scores.items()}
        judged[c.name] = {"model": judgement.model, "scores": scores}
        whole.update(scores)
    action = strongest_action(decisions) if judged else "undetermined"
    toxicity = judged.get("toxicity", {})
    result = {
        "channel": args.channel, "model": toxicity.get("model"), "scores": whole, "classifiers": judged,
        "language": {"code": code, "probability": round(probability, 4)},
        "segments": pipe.segments, "decisions": [d.to_dict() for d in decisions], "action": action,
        "status": status.to_dict(),
    }
    if args.json:
        print(safe_json(result))
    else:
        _print_text(result, settings, args.channel, decisions, pipe.segments, status.coverage_limited)
    if not judged:
        problems = [m for m in status.messages if "unavailable" in m] or ["no content classifier is configured"]
        raise ClassifierUnavailableError("nothing judged the text: " + "; ".join(problems))
    return 0


def _print_text(result: dict[str, Any], settings: Settings, channel: str, decisions: list[Decision],
                segments: list[dict[str, Any]], coverage_limited: list[str]) -> None:
    rules = settings.policy().rules[channel]
    language = result["language"]
    print(f"channel: {channel}    language: {language['code'] or 'unknown'} ({language['probability']:.2f})")
    for name, judged in result["classifiers"].items():
        print(f"\n{name} ({judged['model']})")
        print(f"{'label':24} {'score':>7} {'threshold':>9}  action")
        for label, score in judged["scores"].items():
            rule = rules.get(label)
            hit = rule is not None and rule.action != "allow" and score >= rule.threshold
            print(f"{printable(label)[:24]:24} {score:7.3f} {rule.threshold if rule else float('nan'):9.2f}  "
                  f"{(rule.action if rule else '-')}{'  <-- reached' if hit else ''}")
    for st in result["status"]["classifiers"].values():
        if st["state"] != "active":
            print(f"{st['title']}: {st['state']}{': ' + st['message'] if st['message'] else ''}")
    if len(segments) > 1:
        print(f"\n{len(segments)} segments scored (plus rolling windows)")
    for d in decisions:
        print(f"  {d.action:6} {d.label} {d.score:.3f} >= {d.threshold:.2f} "
              f"[{d.start}:{d.end}]{' (window)' if d.window else ''} {printable(d.text[:60])!r}")
    for note in coverage_limited:
        print(f"note: coverage limited for {note}")
    print(f"\ndecision: {result['action']}")
