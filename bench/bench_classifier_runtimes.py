"""Toxicity classifier runtimes: torch fp32 / torch int8 / ONNX Runtime fp32 / ONNX Runtime int8.

For each runtime, on the real-size random-weight Detoxify model (bert-base, ``original``; built by
bench/models.py and converted to ONNX here with ``onnx_export``, exactly as an import does):

* per-segment latency: each sentence of an English corpus scored alone (how the guard's worker
  scores a segment), one thread, median / p95, plus the time to load the model;
* agreement with torch fp32 (Detoxify's own path, the reference) on the same texts: max absolute
  score difference, and decisions that change at the default policy thresholds (every channel x label:
  whether the score crosses the rule's threshold);
* the guard's decode ratio: raw llama-cpp-python decode vs decode with a GuardPipeline (that scorer
  + the fastText language lock) fed token by token, interleaved in the same run (the random-weight
  R1-Distill-Qwen-1.5B Q4_K_M of bench/models.py; bench/bench_guard.py's realistic prose stream:
  the real model decodes, the guard sees English prose of the same token count; worker at the
  default nice).

    python bench/bench_classifier_runtimes.py [--quick] [--texts N] [--tokens N] [--repeats N] [--no-decode]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import bench_guard  # noqa: E402  (sets R1DESK_HOME / HF_HUB_OFFLINE, imports the guard and chat)
import models  # noqa: E402
from r1desk.core.guard import onnx_export  # noqa: E402
from r1desk.core.guard.detoxify_onnx import OnnxDetoxifyScorer  # noqa: E402
from r1desk.core.guard.policy import Policy  # noqa: E402
from r1desk.core.guard.toxicity import DetoxifyScorer  # noqa: E402

RUNTIMES = ("torch-fp32", "torch-int8", "onnx-fp32", "onnx-int8")
REFERENCE = "torch-fp32"


def make(runtime: str, model_type: str) -> Any:
    int8 = runtime.endswith("int8")
    if runtime.startswith("torch"):
        return DetoxifyScorer(model_type, num_threads=1, quantize=int8)
    return OnnxDetoxifyScorer(model_type, num_threads=1, quantize=int8, convert=False)


def texts_for(n: int) -> list[str]:
    sentences = [s.strip() for s in models.english_corpus() if 20 < len(s.strip()) < 400]
    n = min(n, len(sentences))
    return [sentences[k * len(sentences) // n] for k in range(n)]


def decisions(scores: list[dict[str, float]], policy: Policy) -> list[tuple[int, str, str, str]]:
    """(text, channel, label, action-or-allow) for every text, channel and label of the policy."""
    out = []
    for i, row in enumerate(scores):
        for channel, rules in policy.rules.items():
            for label, rule in rules.items():
                if label in row:
                    out.append((i, channel, label, rule.action if row[label] >= rule.threshold else "allow"))
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def latency_and_agreement(model_type: str, texts: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    models.install_detoxify(model_type)
    t = time.perf_counter()
    folder = onnx_export.export(model_type)
    convert_s = time.perf_counter() - t
    sizes = {"onnx-fp32": (folder / "model.onnx").stat().st_size, "onnx-int8": (folder / "model.int8.onnx").stat().st_size}
    policy = Policy()
    bench_guard.set_torch_threads(1)
    results: dict[str, dict[str, Any]] = {}
    for runtime in RUNTIMES:
        scorer = make(runtime, model_type)
        t = time.perf_counter()
        scorer.load()
        load_s = time.perf_counter() - t
        scorer.score(texts[:2])  # warm-up
        results[runtime] = {"runtime": runtime, "scores": [], "lat": [], "load_s": load_s, "scorer": scorer}
    # Interleaved, text by text (the order of the runtimes rotates), so a change in the shared machine's
    # load hits every runtime alike.
    for i, text in enumerate(texts):
        order = RUNTIMES[i % len(RUNTIMES):] + RUNTIMES[:i % len(RUNTIMES)]
        for runtime in order:
            r = results[runtime]
            t = time.perf_counter()
            r["scores"].append(r["scorer"].score([text])[0])
            r["lat"].append(time.perf_counter() - t)
    for runtime in RUNTIMES:
        r = results[runtime]
        print(f"# {runtime}: p50 {statistics.median(r['lat']) * 1000:.1f} ms, load {r['load_s']:.2f} s",
              file=sys.stderr, flush=True)
    ref = results[REFERENCE]["scores"]
    ref_dec = decisions(ref, policy)
    rows = []
    for runtime in RUNTIMES:
        r = results[runtime]
        diffs = [abs(a[k] - b[k]) for a, b in zip(r["scores"], ref) for k in b]
        dec = decisions(r["scores"], policy)
        changed = sum(1 for a, b in zip(dec, ref_dec) if a != b)
        margin = min(abs(row[label] - rule.threshold) for row in ref for rules in policy.rules.values()
                     for label, rule in rules.items() if label in row)
        rows.append({"runtime": runtime, "p50": statistics.median(r["lat"]), "p95": pct(r["lat"], 0.95),
                     "load_s": r["load_s"], "max_diff": max(diffs), "changed": changed, "decisions": len(dec),
                     "ref_margin": margin, "scorer": r["scorer"], "size": sizes.get(runtime)})
    return rows, {"convert_s": convert_s, "texts": len(texts),
                  "chars_p50": statistics.median(len(t) for t in texts)}


def guarded_run(engine: Any, prompt: str, params: Any, pieces: list[str], pipe: Any,
                starts_in_thinking: bool) -> dict[str, Any]:
    """One generation whose prose pieces go through the thinking splitter into a guard pipeline, as
    ``core.chat`` feeds them (feed, then poll, per token)."""
    from r1desk.core.thinking import ThinkingSplitter

    pipe.prepare()
    splitter = ThinkingSplitter(starts_in_thinking=starts_in_thinking)
    gen = engine.generate(prompt, params)
    for i, _ in enumerate(gen):
        for channel, text in splitter.feed(pieces[i % len(pieces)]):
            pipe.feed(channel, text)
        pipe.poll()
    for channel, text in splitter.finish():
        pipe.feed(channel, text)
    t = time.perf_counter()
    pipe.finish(timeout=300)
    tail = time.perf_counter() - t
    segments = list(pipe.segments)
    pipe.close()
    return {"tps": gen.stats.decode_tokens_per_s, "tail": tail, "segments": len(segments),
            "scored": sum(1 for seg in segments if seg.get("scores"))}


def decode_ratio(scorers: dict[str, Any], tokens: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Raw decode vs decode with the guard (toxicity with each runtime's scorer + the fastText language
    lock, the scoring worker at its default priority), interleaved in one run."""
    from r1desk.core.engine import Engine, GenParams, LoadOptions
    from r1desk.core.guard.config import GuardConfig
    from r1desk.core.guard.langid import LangId
    from r1desk.core.guard.pipeline import GuardPipeline
    from r1desk.core.guard.toxicity import ToxicityClassifier
    from r1desk.core.prompts import PromptRequest, build_prompt

    engine = Engine()
    info = engine.load(models.r1_1_5b_q4_k_m(), LoadOptions(n_ctx=2048, seed=0))
    params = GenParams(max_tokens=tokens, seed=1234)
    built = build_prompt(info, PromptRequest(user_text=bench_guard.PROMPT, language="en"),
                         count_tokens=engine.count_tokens, n_ctx=engine.n_ctx)
    bench_guard.raw_run(engine, built.text, GenParams(max_tokens=8, seed=1))  # page the weights in
    pieces = bench_guard.ProseEngine(engine, tokens).pieces
    config, langid = GuardConfig(), LangId()
    langid.load()
    out = {}
    for runtime, scorer in scorers.items():
        raws, guardeds = [], []
        for _ in range(repeats):
            raws.append(bench_guard.raw_run(engine, built.text, params))
            bench_guard.set_torch_threads(1)
            pipe = GuardPipeline(Policy.from_config(config), [ToxicityClassifier(scorer)], langid, "en")
            guardeds.append(guarded_run(engine, built.text, params, pieces, pipe, built.starts_in_thinking))
        ratios = [g["tps"] / r["tps"] for r, g in zip(raws, guardeds)]
        out[runtime] = {"ratio": statistics.median(ratios), "ratios": ratios,
                        "raw": statistics.median(r["tps"] for r in raws),
                        "guarded": statistics.median(g["tps"] for g in guardeds),
                        "tail": statistics.median(g["tail"] for g in guardeds),
                        "segments": guardeds[-1]["segments"], "scored": guardeds[-1]["scored"]}
        print(f"# decode {runtime}: ratio {out[runtime]['ratio']:.3f} {['%.3f' % r for r in ratios]}",
              file=sys.stderr, flush=True)
    engine.unload()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--texts", type=int, default=None, help="sentences scored per runtime (default 200)")
    ap.add_argument("--tokens", type=int, default=None, help="tokens per generation (default 192)")
    ap.add_argument("--repeats", type=int, default=None, help="raw/guarded pairs per runtime (default 3)")
    ap.add_argument("--no-decode", action="store_true", help="skip the decode-ratio part (no LLM)")
    ap.add_argument("--model-type", default="original", choices=sorted(models.DETOXIFY_SHAPES),
                    help="which random-weight Detoxify shape (bench/models.py)")
    args = ap.parse_args(argv)
    n_texts = args.texts or (30 if args.quick else 200)
    tokens = args.tokens or (48 if args.quick else 192)
    repeats = args.repeats or (1 if args.quick else 3)
    load_before = os.getloadavg()
    rows, info = latency_and_agreement(args.model_type, texts_for(n_texts))
    ratios = {} if args.no_decode else decode_ratio({r["runtime"]: r["scorer"] for r in rows}, tokens, repeats)
    load_after = os.getloadavg()

    # Ship: the fastest runtime (per-segment p50) whose decisions do not change.
    safe = [r for r in rows if r["changed"] == 0]
    best = min(safe, key=lambda r: r["p50"]) if safe else None
    ref = next(r for r in rows if r["runtime"] == REFERENCE)
    print("## Classifier runtimes: torch vs ONNX Runtime, fp32 vs int8\n")
    shape = models.DETOXIFY_SHAPES[args.model_type]
    print(f"Detoxify `{args.model_type}` with random weights of the real size ({shape}), one "
          f"thread; {info['texts']} English sentences (median {info['chars_p50']:.0f} characters) each scored "
          f"alone, as the guard scores a segment, the runtimes interleaved text by text. Agreement is against torch fp32 (Detoxify's own code): "
          f"decisions = texts x channels x labels at the default policy thresholds. One-time conversion to "
          f"ONNX (export, check, int8 quantisation): {info['convert_s']:.0f} s. Load average "
          f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end (2 cores, shared).\n")
    head = "| runtime | model file | load | per segment p50 | p95 | vs torch fp32 | max abs diff | decisions changed |"
    if ratios:
        head += " decode ratio (median; pairs) | raw → guarded tok/s | end-of-turn wait | segments scored |"
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---|---:|---:|" if ratios else ""))
    for r in rows:
        size = f"{r['size'] / 1e6:.0f} MB" if r["size"] else "(checkpoint)"
        line = (f"| {r['runtime']} | {size} | {r['load_s']:.1f} s | {r['p50'] * 1000:.1f} ms | "
                f"{r['p95'] * 1000:.1f} ms | ×{ref['p50'] / r['p50']:.2f} | {r['max_diff']:.2g} | "
                f"{r['changed']} / {r['decisions']} |")
        if ratios:
            d = ratios[r["runtime"]]
            line += (f" **{d['ratio']:.3f}** ({', '.join('%.2f' % x for x in d['ratios'])}) | "
                     f"{d['raw']:.2f} → {d['guarded']:.2f} | {d['tail'] * 1000:.0f} ms | "
                     f"{d['scored']}/{d['segments']} |")
        print(line)
    print(f"\nThe reference scores' closest distance to a threshold: {ref['ref_margin']:.3g} (random weights "
          f"put scores near 0.5, where the answer's thresholds are, so this is a hard case for agreement).")
    if ratios:
        print(f"Decode ratio: guarded ÷ raw decode tokens/s of the random-weight R1-Distill-Qwen-1.5B Q4_K_M, "
              f"{tokens} tokens, {repeats} interleaved raw/guarded pairs per runtime (realistic prose stream; "
              f"the guard: toxicity with that runtime + the fastText language lock, scoring worker at its "
              f"default priority); end-of-turn wait: finish() after the last token.")
    if best is not None:
        close = [r["runtime"] for r in safe if r is not best and r["p50"] <= best["p50"] * 1.1]
        print(f"\n**Fastest configuration whose decisions do not change: {best['runtime']}** "
              f"({best['p50'] * 1000:.1f} ms per segment, ×{ref['p50'] / best['p50']:.2f} torch fp32)"
              + (f"; within 10 %: {', '.join(close)}." if close else "."))
    else:
        print("\nEvery runtime changed some decision; keep torch fp32.")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
