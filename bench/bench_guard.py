"""Guarded pipeline vs raw llama.cpp generation: decode tokens/s ratio, TTFT overhead, moderation lag.

Same model, same prompt, same seed, same run: raw ``Engine.generate`` (llama-cpp-python's token
loop, nothing else) and ``ChatSession.run_turn`` (prompt check, thinking splitter, streaming
guard with real Detoxify code, fastText language lock, audit log) are interleaved and repeated,
and medians are reported, because the 2-core machine is shared and noisy.

Models whose cost is real (bench/models.py): a random-weight LLM with the R1-Distill-Qwen-1.5B
shapes in Q4_K_M, and random-weight Detoxify checkpoints of the real sizes (bert-base for
"original", albert-base for "original-small").

Text stream. A random-weight LLM writes random tokens, so its output has few sentence ends and
odd scripts. Two text modes, both decoding the real model token by token:
* ``realistic`` (the headline): each decoded token's text is replaced by the next token of
  ordinary English prose (R1-style thinking, then ``</think>``, then an answer; tokenised with the
  model's own tokenizer), so the guard segments and scores sentences of realistic length;
* ``random``: the model's own output, segmented by the bounded window (max_segment_chars).

Moderation lag: from the moment the token holding a segment's last character is fed to the guard
until that segment's decision (scores + policy) is available to the chat loop.

    python bench/bench_guard.py [--quick] [--tokens N] [--repeats N] [--configs a,b,...]
"""
from __future__ import annotations

import argparse
import bisect
import codecs
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("R1DESK_HOME", tempfile.mkdtemp(prefix="r1desk-bench-"))

import numpy as np  # noqa: E402

import models  # noqa: E402
from r1desk.core.chat import ChatSession, TurnRequest  # noqa: E402
from r1desk.core.engine import Engine, GenParams, LoadOptions  # noqa: E402
from r1desk.core.events import Delta, TurnFinished  # noqa: E402
from r1desk.core.guard.pipeline import GuardPipeline  # noqa: E402
from r1desk.core.guard.policy import Policy  # noqa: E402
from r1desk.core.guard.session import GuardSession  # noqa: E402
from r1desk.core.guard.toxicity import ToxicityClassifier  # noqa: E402
from r1desk.core.guard.toxicity import DetoxifyScorer  # noqa: E402
from r1desk.core.prompts import PromptRequest, build_prompt  # noqa: E402
from r1desk.settings import Settings  # noqa: E402
from r1desk.storage.auditlog import AuditLog  # noqa: E402

PROMPT = "A farmer has 17 sheep and buys 5 more each week. How many sheep will he have after 6 weeks?"


# --- machine -----------------------------------------------------------------------------------

def memory_bandwidth_gbs(size_mb: int = 512, repeats: int = 5, threads: int | None = None) -> float:
    """Best-of-N numpy copy of a large array, split over ``threads`` threads (numpy releases the GIL),
    counting bytes read + bytes written per second (GB/s). All cores, as decoding uses them."""
    threads = threads or os.cpu_count() or 1
    src = np.ones(size_mb * 1024 * 1024 // 8)
    dst = np.zeros_like(src)  # touched now, so page faults are not timed
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts if p.size]

    def copy(lo: int, hi: int) -> None:
        np.copyto(dst[lo:hi], src[lo:hi])

    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=copy, args=b) for b in bounds]
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best / 1e9


# --- the realistic text stream ------------------------------------------------------------------

def realistic_text(n_chars: int) -> str:
    """R1-shaped prose: thinking sentences, ``</think>``, answer sentences (English corpus)."""
    sentences = [s.strip() for s in models.english_corpus() if 20 < len(s) < 400]
    out, i = [], 0
    while sum(len(s) + 1 for s in out) < n_chars:
        out.append(sentences[i % len(sentences)])
        i += 1
    cut = max(1, int(len(out) * 0.6))
    return " ".join(out[:cut]) + "\n</think>\n\n" + " ".join(out[cut:])


class _SwappedGeneration:
    """A real Generation whose text pieces are replaced one for one by prose pieces."""

    def __init__(self, gen: Any, pieces: list[str]) -> None:
        self._gen, self._pieces, self.text = gen, pieces, ""

    def __iter__(self) -> Iterator[str]:
        for i, _ in enumerate(self._gen):
            piece = self._pieces[i % len(self._pieces)]
            self.text += piece
            yield piece

    @property
    def stats(self) -> Any:
        return self._gen.stats

    @property
    def tokens(self) -> list[int]:
        return self._gen.tokens


class ProseEngine:
    """Engine proxy: decodes the real model, streams realistic prose of the same token count."""

    def __init__(self, engine: Engine, n_tokens: int) -> None:
        self._engine = engine
        llm = engine._require()
        text = realistic_text(n_tokens * 6)
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pieces = [decoder.decode(engine.piece(t)) for t in ids]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def generate(self, prompt: str, params: GenParams | None = None, cancel: Any = None) -> Any:
        return _SwappedGeneration(self._engine.generate(prompt, params, cancel), self.pieces)


# --- instrumented guard -------------------------------------------------------------------------

class TimedPipeline(GuardPipeline):
    """GuardPipeline that records when each segment's last character arrived and when it was decided.

    ``inline`` scores on the generation thread between decode steps instead of in the worker (an
    option measured here); ``nice`` lowers the worker thread's scheduling priority.
    """

    inline = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fed: dict[str, tuple[list[int], list[float]]] = {"thinking": ([], []), "answer": ([], [])}
        self.lags: list[float] = []

    def feed(self, channel: str, text: str) -> None:
        lengths, times = self.fed[channel]
        lengths.append(len(self._segmenters[channel].text) + len(text))
        times.append(time.perf_counter())
        if self.inline:
            segments = self._segmenters[channel].feed(text)
            if segments:
                self._process(segments, text_of={ch: s.text for ch, s in self._segmenters.items()})
            return
        super().feed(channel, text)

    def _process(self, segments: list[Any], *, text_of: dict[str, str]) -> list[Any]:
        made = super()._process(segments, text_of=text_of)
        done = time.perf_counter()
        for seg in segments:
            if seg.channel not in self.fed:
                continue
            lengths, times = self.fed[seg.channel]
            i = bisect.bisect_left(lengths, seg.end)
            if i < len(times):
                self.lags.append(done - times[i])
        return made


class TimedSession(GuardSession):
    def __init__(self, *args: Any, inline: bool = False, nice: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inline, self.nice = inline, nice
        self.pipelines: list[TimedPipeline] = []

    def _pipeline(self, config: Any, target: str | None) -> GuardPipeline:
        pipe = TimedPipeline(Policy.from_config(config), self.classifiers, self.langid, target,
                             window_segments=config.window_segments, max_segment_chars=config.max_segment_chars,
                             language_action=config.language_action, min_share=config.min_share)
        pipe.inline, pipe.worker_nice = self.inline, self.nice
        self.pipelines.append(pipe)
        return pipe


# --- configurations -----------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    # name: classifier model type, torch threads, int8 dynamic quantisation, inline scoring, worker
    # nice, and "padded": one padded batch per call (the guard before length-bucketed batches)
    "bert-t1-padded": {"model": "original", "threads": 1, "padded": True},   # the guard as it was
    "bert-t1": {"model": "original", "threads": 1},
    "bert-t1-nice5": {"model": "original", "threads": 1, "nice": 5},                 # the default
    "bert-t1-int8": {"model": "original", "threads": 1, "int8": True},
    "bert-t1-int8-nice5": {"model": "original", "threads": 1, "int8": True, "nice": 5},
    "bert-t1-int8-nice10": {"model": "original", "threads": 1, "int8": True, "nice": 10},
    "bert-t1-int8-inline": {"model": "original", "threads": 1, "int8": True, "inline": True},
    "bert-t2-int8-inline": {"model": "original", "threads": 2, "int8": True, "inline": True},
    "albert-t1": {"model": "original-small", "threads": 1},
    "albert-t1-int8-nice5": {"model": "original-small", "threads": 1, "int8": True, "nice": 5},
}
DEFAULT_CONFIGS = ["bert-t1-padded", "bert-t1", "bert-t1-nice5", "bert-t1-int8", "bert-t1-int8-nice5", "bert-t1-int8-nice10",
                   "bert-t1-int8-inline", "albert-t1", "albert-t1-int8-nice5"]
RANDOM_CONFIGS = ["bert-t1-padded", "bert-t1-nice5"]  # the random-text rows: before and after


def make_scorer(cfg: dict[str, Any]) -> DetoxifyScorer:
    scorer = DetoxifyScorer(cfg["model"], num_threads=cfg["threads"])
    if "quantize" in DetoxifyScorer.__init__.__code__.co_varnames:
        scorer = DetoxifyScorer(cfg["model"], num_threads=cfg["threads"], quantize=bool(cfg.get("int8")))
        scorer.load()
    else:  # before the guard grew the option: quantise here, the same way
        scorer.load()
        if cfg.get("int8"):
            import torch

            scorer._model.model = torch.ao.quantization.quantize_dynamic(  # type: ignore[union-attr]
                scorer._model.model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[union-attr]
    return scorer


def set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def raw_run(engine: Engine, prompt: str, params: GenParams) -> dict[str, float]:
    t0 = time.perf_counter()
    gen = engine.generate(prompt, params)
    first = None
    for _ in gen:
        if first is None:
            first = time.perf_counter()
    stats = gen.stats
    return {"tps": stats.decode_tokens_per_s, "ttft": (first or t0) - t0, "tokens": stats.completion_tokens}


def guarded_run(session: ChatSession, params: GenParams) -> dict[str, Any]:
    t0 = time.perf_counter()
    first = last = None
    result = None
    for ev in session.run_turn(TurnRequest(user_text=PROMPT, language="auto", params=params)):
        if isinstance(ev, Delta):
            last = time.perf_counter()
            if first is None:
                first = last
        elif isinstance(ev, TurnFinished):
            result = ev.result
    end = time.perf_counter()
    pipe = session.guard.pipelines[-1]
    return {"tps": result.usage["decode_tokens_per_s"], "ttft": (first or t0) - t0,
            "tokens": result.usage["completion_tokens"], "tail": end - (last or end),
            "lags": list(pipe.lags), "segments": len(pipe.segments),
            "scored": sum(1 for s in pipe.segments if s["scores"] is not None),
            "finish": result.finish_reason}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--tokens", type=int, default=None, help="tokens per generation")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved raw/guarded pairs per config")
    ap.add_argument("--configs", default=None, help="comma-separated config names: " + ", ".join(CONFIGS))
    ap.add_argument("--modes", default="realistic,random", help="text modes: realistic, random")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own)")
    args = ap.parse_args(argv)
    tokens = args.tokens or (48 if args.quick else 192)
    repeats = args.repeats or (1 if args.quick else 3)
    names = args.configs.split(",") if args.configs else (["bert-t1-nice5"] if args.quick else DEFAULT_CONFIGS)
    modes = args.modes.split(",")

    bandwidth = memory_bandwidth_gbs()
    model_path = models.r1_1_5b_q4_k_m()
    for t in {CONFIGS[n]["model"] for n in names}:
        models.install_detoxify(t)
    engine = Engine()
    info = engine.load(model_path, LoadOptions(n_ctx=2048, n_threads=args.threads, seed=0))
    params = GenParams(max_tokens=tokens, seed=1234)
    prompt = build_prompt(info, PromptRequest(user_text=PROMPT, language="en"), count_tokens=engine.count_tokens,
                          n_ctx=engine.n_ctx).text
    raw_run(engine, prompt, GenParams(max_tokens=8, seed=1))  # warm-up: page the weights in
    settings = Settings()
    audit = AuditLog(Path(os.environ["R1DESK_HOME"]) / "bench-audit.db")
    prose = ProseEngine(engine, tokens)

    rows: list[dict[str, Any]] = []
    scorers: dict[str, DetoxifyScorer] = {}
    from r1desk.core.guard import toxicity

    for mode in modes:
        for name in names:
            if mode == "random" and not args.configs and not args.quick and name not in RANDOM_CONFIGS:
                continue
            cfg = CONFIGS[name]
            toxicity.MAX_LENGTH_SPREAD = float("inf") if cfg.get("padded") else 1.5
            key = f"{cfg['model']}-{cfg.get('int8', False)}"
            if key not in scorers:
                scorers[key] = make_scorer(cfg)
            guard = TimedSession(settings.guard_config(), classifiers=[ToxicityClassifier(scorers[key])],
                                 inline=bool(cfg.get("inline")), nice=int(cfg.get("nice", 0)))
            session = ChatSession(prose if mode == "realistic" else engine, audit=audit,
                                  config=settings.chat_config(), guard=guard)
            raws, guardeds = [], []
            for _ in range(repeats):  # interleaved: raw, guarded, raw, guarded ...
                raws.append(raw_run(engine, prompt, params))
                set_torch_threads(cfg["threads"])
                guardeds.append(guarded_run(session, params))
            lags = [lag for g in guardeds for lag in g["lags"]]
            ratios = [g["tps"] / r["tps"] for r, g in zip(raws, guardeds)]
            row = {"mode": mode, "config": name,
                   "raw_tps": statistics.median(r["tps"] for r in raws),
                   "guarded_tps": statistics.median(g["tps"] for g in guardeds),
                   "ratio": statistics.median(ratios), "ratios": ratios,
                   "raw_ttft": statistics.median(r["ttft"] for r in raws),
                   "guarded_ttft": statistics.median(g["ttft"] for g in guardeds),
                   "lag_p50": pct(lags, 0.5), "lag_p95": pct(lags, 0.95),
                   "tail": statistics.median(g["tail"] for g in guardeds),
                   "segments": guardeds[-1]["segments"], "scored": guardeds[-1]["scored"],
                   "tokens": guardeds[-1]["tokens"], "raw_tokens": raws[-1]["tokens"]}
            rows.append(row)
            print(f"# {mode} {name}: ratio {row['ratio']:.3f} {['%.3f' % r for r in ratios]} "
                  f"raw {row['raw_tps']:.2f} guarded {row['guarded_tps']:.2f} tok/s, lag p50 "
                  f"{row['lag_p50'] * 1000:.0f} ms p95 {row['lag_p95'] * 1000:.0f} ms", file=sys.stderr, flush=True)
    engine.unload()

    size = model_path.stat().st_size
    bound = bandwidth * 1e9 / size
    best_raw = max(r["raw_tps"] for r in rows)
    print("## Guarded pipeline vs raw llama.cpp decode\n")
    print(f"LLM: random-weight R1-Distill-Qwen-1.5B shapes, Q4_K_M, {size / 1e9:.2f} GB; llama.cpp threads "
          f"{args.threads or 'default'}; {tokens} tokens per generation, {repeats} interleaved raw/guarded "
          f"pairs per row, medians. Classifiers: random-weight Detoxify of the real sizes (bert-base = "
          f"`original`, albert-base = `original-small`), loaded through Detoxify's offline path; fastText "
          f"lid.176 language lock; real audit log.\n")
    print("| text | config | raw tok/s | guarded tok/s | ratio (median) | TTFT raw → guarded | "
          "lag p50 / p95 | end-of-turn wait | segments scored |")
    print("|---|---|---:|---:|---:|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['config']} | {r['raw_tps']:.2f} | {r['guarded_tps']:.2f} | "
              f"**{r['ratio']:.3f}** | {r['raw_ttft'] * 1000:.0f} → {r['guarded_ttft'] * 1000:.0f} ms "
              f"(+{(r['guarded_ttft'] - r['raw_ttft']) * 1000:.0f}) | {r['lag_p50'] * 1000:.0f} / "
              f"{r['lag_p95'] * 1000:.0f} ms | {r['tail'] * 1000:.0f} ms | {r['scored']}/{r['segments']} |")
    print("\nConfig names: model (bert = bert-base, albert = albert-base), `t1`/`t2` torch threads, `int8` "
          "dynamic int8 quantisation of the Linear layers, `inline` scoring on the generation thread "
          "between decode steps (default: a worker thread), `niceN` worker thread at nice N (without it: "
          "normal priority), `padded` one padded batch per classifier call (the guard before length buckets).")
    print("Text `realistic`: the real model decodes every token, but the text handed on is English prose "
          "of the same token count (R1-shaped thinking then answer), so sentences are scored; `random`: "
          "the model's own random-token output, cut by the segmenter's bounded window.\n")
    print("### Physical limit\n")
    print(f"Memory bandwidth (numpy copy, read + write): {bandwidth:.1f} GB/s; bytes read per token ≈ model "
          f"file {size / 1e9:.2f} GB → decode ≤ {bound:.1f} tok/s. Measured raw decode: {best_raw:.2f} tok/s "
          f"({best_raw / bound:.0%} of the bound).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
