"""`r1desk classify`: classifier scores and the decision the current policy would take.

For admins calibrating thresholds. Also manages the Detoxify weights:
``--status``, ``--download-weights TYPE``, ``--import-weights TYPE CHECKPOINT CONFIG_DIR``.
"""
from __future__ import annotations

import argparse
import json
import sys

from r1desk.errors import ClassifierUnavailableError, UserFacingError


def register(subparsers: argparse._SubParsersAction) -> None:
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


def _classify(text: str, settings, args: argparse.Namespace) -> int:
    from r1desk.core.guard.langid import LangId
    from r1desk.core.guard.pipeline import GuardPipeline, strongest_action
    from r1desk.core.guard.toxicity import make_scorers

    model_type = args.model_type or settings.guard.model_type
    scorer, multilingual = make_scorers(model_type, multilingual=settings.guard.multilingual,
                                        device=settings.guard.device, num_threads=settings.guard.num_threads)
    try:
        scorer.load()
    except ClassifierUnavailableError as exc:
        raise ClassifierUnavailableError(f"toxicity filter unavailable: {exc.message}") from None
    pipe = GuardPipeline.from_settings(settings, scorer, LangId(), target_language="off", multilingual=multilingual)
    pipe.prepare()
    decisions = pipe.classify(args.channel, text)
    whole = scorer.score([text])[0]
    action = strongest_action(decisions)
    result = {
        "channel": args.channel, "model": scorer.name, "scores": {k: round(v, 6) for k, v in whole.items()},
        "segments": pipe.segments, "decisions": [d.to_dict() for d in decisions], "action": action,
        "status": pipe.status.to_dict(),
    }
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    rules = settings.policy().rules[args.channel]
    print(f"model: {scorer.name}    channel: {args.channel}")
    print(f"{'label':16} {'score':>7} {'threshold':>9}  action")
    for label, score in whole.items():
        rule = rules.get(label)
        hit = rule is not None and rule.action != "allow" and score >= rule.threshold
        print(f"{label:16} {score:7.3f} {rule.threshold if rule else float('nan'):9.2f}  "
              f"{(rule.action if rule else '-')}{'  <-- reached' if hit else ''}")
    if len(pipe.segments) > 1:
        print(f"\n{len(pipe.segments)} segments scored (plus rolling windows)")
    for d in decisions:
        print(f"  {d.action:6} {d.label} {d.score:.3f} >= {d.threshold:.2f} "
              f"[{d.start}:{d.end}]{' (window)' if d.window else ''} {d.text[:60]!r}")
    for note in pipe.status.coverage_limited:
        print(f"note: toxicity coverage limited for {note}")
    print(f"\ndecision: {action}")
    return 0
