"""The harm filter's cost: decode tokens/s, time to first token and hold-back display latency with a
guard model (llama.cpp) beside the chat model, against raw llama-cpp-python, in one run.

Models (real shapes, random weights, Q4_K_M; bench/models.py): the chat model has the
R1-Distill-Qwen-1.5B shapes; the guard models have the Qwen3-0.6B shapes (Qwen3Guard-Gen-0.6B format)
and the Llama-3.2-1B shapes (Llama Guard 3 1B format); Detoxify is a random-weight bert-base
("original"). The chat model decodes every token for real; the text handed to the chat loop is
English prose of the same token count (bench_guard.py's "realistic" mode), so the guard segments
and judges sentences of realistic length.

What it measures:

1. decode tokens/s: raw ``Engine.generate`` vs the full ``ChatSession.run_turn`` with Detoxify, and
   with Detoxify + each guard model (the app's default thread budget), interleaved repetitions,
   ratio to the raw run of the same repetition, median;
2. time to first token with the prompt check (the guard model judging the prompt before generation,
   as ``core.chat`` does) vs without, and with the prompt judged in a thread *while* the chat model
   reads the prompt (what the issue asks to compare);
3. hold-back display latency p50/p95 (token decoded -> shown; ``core.holdback``) against the decode
   time of one sentence;
4. thread budgets: a few splits of the cores between the chat model and the judge.

Random-weight guard models say nothing parsable: every verdict is "undetermined", which the default
policy flags (so the turn runs to its end). The judge's ``max_tokens`` is the length of a real "safe"
verdict in the profile's format plus its end-of-turn token, so it decodes as many tokens as a real
one would. Detoxify's rules keep their actions (so the hold-back applies exactly as by default) with
thresholds of 1.0, so random scores never block a turn; the cost of scoring is the same.

    python bench/bench_harm.py [--quick] [--tokens N] [--repeats N] [--thread-repeats N] [--ttft-repeats N]
                               [--parts 1,2,3,4] [--judges qwen3,llama]

Full run: about 10 minutes on a quiet 2-core machine (much longer on a loaded one); --quick: a smoke
check (32 tokens, one repetition, one thread split). On a GPU machine, set the guard model's and the
chat model's GPU layers (not done here: this script measures the CPU case the issue asks about).
"""
from __future__ import annotations

import argparse
import bisect
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("R1DESK_HOME", tempfile.mkdtemp(prefix="r1desk-bench-"))

import models  # noqa: E402
from bench_guard import PROMPT, memory_bandwidth_gbs, pct, realistic_text  # noqa: E402
import r1desk.core.chat as chat_module  # noqa: E402
from r1desk.core.chat import ChatSession, TurnRequest  # noqa: E402
from r1desk.core.engine import Engine, GenParams, LoadOptions  # noqa: E402
from r1desk.core.events import Delta, TurnFinished  # noqa: E402
from r1desk.core.guard.classifier import REGISTRY  # noqa: E402
from r1desk.core.guard.harm.classifier import UNDETERMINED, HarmClassifier  # noqa: E402
from r1desk.core.guard.harm.judge import GuardModelJudge  # noqa: E402
from r1desk.core.guard.langid import LangId  # noqa: E402
from r1desk.core.guard.pipeline import WORKER_NICE, GuardPipeline  # noqa: E402
from r1desk.core.guard.segmenter import Segmenter  # noqa: E402
from r1desk.core.guard.session import GuardSession  # noqa: E402
from r1desk.core.guard.toxicity import DEFAULT_RULES as TOXICITY_RULES  # noqa: E402
from r1desk.core.holdback import HoldBack  # noqa: E402
from r1desk.core.prompts import PromptRequest  # noqa: E402
from r1desk.settings import Settings  # noqa: E402
from r1desk.storage.auditlog import AuditLog  # noqa: E402

# A real "safe" verdict of each profile (what a real guard model decodes most of the time).
SAFE_VERDICTS = {
    "qwen3guard-gen": {"prompt": "Safety: Safe\nCategories: None",
                       "response": "Safety: Safe\nCategories: None\nRefusal: No"},
    "llama-guard-3": {"prompt": "safe", "response": "safe"},
}
JUDGES = {"qwen3": ("Qwen3-0.6B shapes (Qwen3Guard-Gen format)", models.guard_qwen3_0_6b_q4_k_m),
          "llama": ("Llama-3.2-1B shapes (Llama Guard 3 format)", models.guard_llama_3_2_1b_q4_k_m)}


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


# --- the chat model, streaming prose ------------------------------------------------------------

class ProseStream:
    """A real Generation whose text pieces are replaced one for one by prose pieces; records when the
    stream was opened and when its first piece was decoded."""

    def __init__(self, gen: Any, pieces: list[str]) -> None:
        self._gen, self._pieces, self.text = gen, pieces, ""
        self.opened = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None

    def __iter__(self) -> Iterator[str]:
        for i, _ in enumerate(self._gen):
            self.last = time.perf_counter()
            if self.first is None:
                self.first = self.last
            piece = self._pieces[i % len(self._pieces)]
            self.text += piece
            yield piece

    @property
    def stats(self) -> Any:
        return self._gen.stats

    @property
    def completion_tokens(self) -> int:
        return self._gen.completion_tokens

    def close(self) -> None:
        self._gen.close()


class ProseBackend:
    """The Engine (an InferenceBackend) with ``stream`` swapped for ProseStream."""

    def __init__(self, engine: Engine, pieces: list[str]) -> None:
        self._engine, self.pieces = engine, pieces
        self.last: ProseStream | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def stream(self, prompt: Any, params: GenParams, cancel: threading.Event) -> ProseStream:
        self.last = ProseStream(self._engine.stream(prompt, params, cancel), self.pieces)
        return self.last


def prose_pieces(engine: Engine, n_tokens: int) -> list[str]:
    import codecs

    llm = engine._require()
    ids = llm.tokenize(realistic_text(n_tokens * 6).encode("utf-8"), add_bos=False, special=False)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return [decoder.decode(engine.piece(t)) for t in ids]


def sentence_tokens(pieces: list[str], n_tokens: int) -> list[int]:
    """Tokens per sentence of the first ``n_tokens`` pieces, as the guard's segmenter cuts them."""
    used = pieces[:n_tokens]
    ends, total = [], 0
    for p in used:
        total += len(p)
        ends.append(total)
    text = "".join(used).replace("</think>", "")
    seg = Segmenter("answer", 400)
    segments = seg.feed(text) + seg.flush()
    out, prev = [], 0
    for s in segments:
        tok = bisect.bisect_left(ends, s.end) + 1
        out.append(max(1, tok - prev))
        prev = tok
    return out


class TimedHoldBack(HoldBack):
    """HoldBack that also records, per release, the wait of the text that completed it (its last piece:
    the sentence was complete, then judged): the guard's own share of the display latency."""

    last: TimedHoldBack | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judging_lags: list[float] = []
        TimedHoldBack.last = self

    def _release(self, channel: str, limit: int) -> list[Any]:
        end = min(limit, len(self.raw[channel]), self.cut(channel))
        arrived = [at for offset, at in self._arrivals[channel] if offset <= end]
        out = super()._release(channel, limit)
        if out and arrived and channel in self.held:
            self.judging_lags.append(self.clock() - arrived[-1])
        return out


chat_module.HoldBack = TimedHoldBack  # type: ignore[misc]   # instrumentation only: the same class, timed


# --- the guard ----------------------------------------------------------------------------------

class BenchJudge(GuardModelJudge):
    """GuardModelJudge decoding as many tokens as the profile's real "safe" verdict (+ end of turn)."""

    verdict_tokens: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.all_stats: list[Any] = []

    def load(self) -> None:
        with self._lock:
            if self._llm is not None:
                return
            super().load()
            verdicts = SAFE_VERDICTS.get(self.profile.id, {"prompt": "safe", "response": "safe"})
            self.verdict_tokens = {mode: len(self._llm.tokenize(text.encode(), add_bos=False, special=False)) + 1
                                   for mode, text in verdicts.items()}

    def _judge_once(self, request: Any, mode: Any, risk: str | None) -> Any:
        self._max_tokens = self.verdict_tokens[mode]
        verdict = super()._judge_once(request, mode, risk)
        self.all_stats.append(self.last_stats)
        return verdict

    def reset_cache(self) -> None:
        """Forget the KV cache (the next call evaluates its whole prompt)."""
        with self._lock:
            if self._llm is not None:
                self._llm.reset()


class BenchGuardSession(GuardSession):
    """GuardSession whose pipelines' scoring worker runs at ``worker_nice``."""

    def __init__(self, *args: Any, worker_nice: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_nice = worker_nice

    def _pipeline(self, config: Any, target: str | None) -> GuardPipeline:
        pipe = super()._pipeline(config, target)
        if self.worker_nice is not None:
            pipe.worker_nice = self.worker_nice
        return pipe


def bench_guard_config() -> Any:
    """The default guard configuration, Detoxify's thresholds at 1.0 (actions kept), undetermined harm
    verdicts flagged, no multilingual Detoxify (not installed here), no harm model from the settings."""
    base = Settings().guard_config()
    rules: dict[str, dict[str, tuple[float, str]]] = {}
    for channel, labels in TOXICITY_RULES.items():
        rules[channel] = {label: (1.0, rule.action) for label, rule in labels.items()}
    for channel in ("prompt", "thinking", "answer"):
        rules.setdefault(channel, {})[UNDETERMINED] = (0.5, "flag")
    return replace(base, rules=rules, multilingual=False, extra={})


def toxicity_classifier(config: Any) -> Any:
    spec = REGISTRY.spec("toxicity")
    assert spec is not None
    classifier = spec.factory(config)
    classifier.load()
    return classifier


# --- one run ------------------------------------------------------------------------------------

def raw_run(engine: Engine, prompt: str, params: GenParams) -> dict[str, Any]:
    gen = engine.generate(prompt, params)
    for _ in gen:
        pass
    stats = gen.stats
    return {"tps": stats.decode_tokens_per_s, "ttft": stats.time_to_first_token_s, "tokens": stats.completion_tokens}


def guarded_run(session: ChatSession, backend: ProseBackend, params: GenParams,
                judge: BenchJudge | None) -> dict[str, Any]:
    calls_before = len(judge.all_stats) if judge is not None else 0
    t0 = time.perf_counter()
    shown = None
    result = None
    for ev in session.run_turn(TurnRequest(user_text=PROMPT, language="auto", params=params)):
        if isinstance(ev, Delta):
            if shown is None:
                shown = time.perf_counter()
        elif isinstance(ev, TurnFinished):
            result = ev.result
    end = time.perf_counter()
    assert result is not None
    stream = backend.last
    assert stream is not None and stream.first is not None
    actions: dict[str, int] = {}
    for d in result.decisions:
        actions[d.action] = actions.get(d.action, 0) + 1
    out = {"tps": result.usage["decode_tokens_per_s"], "tokens": result.usage["completion_tokens"],
           "ttft": stream.first - t0, "check": stream.opened - t0, "ttft_shown": (shown or end) - t0,
           "tail": end - (stream.last or end), "hold_p50": result.timings.get("holdback_p50_s"),
           "hold_p95": result.timings.get("holdback_p95_s"), "finish": result.finish_reason, "actions": actions,
           "decode_s": (stream.last or end) - stream.first}
    hold = TimedHoldBack.last
    lags = hold.judging_lags if hold is not None else []
    out.update(lag_p50=pct(lags, 0.5) if lags else None, lag_p95=pct(lags, 0.95) if lags else None)
    if judge is not None:
        new = judge.all_stats[calls_before:]
        out.update(calls=len(new), evaluated=sum(s.evaluated_tokens for s in new),
                   generated=sum(s.generated_tokens for s in new), judge_s=sum(s.seconds for s in new))
    return out


def med(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def ms(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x * 1000:.0f} ms"


# --- the benchmark ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tokens = args.tokens
        self.params = GenParams(max_tokens=args.tokens, seed=1234)
        self.model_path = models.r1_1_5b_q4_k_m()
        models.install_detoxify("original")
        self.engine = Engine()
        self.chat_threads: int | None = -1
        self.load_chat(None)
        self.pieces = prose_pieces(self.engine, args.tokens)
        self.backend = ProseBackend(self.engine, self.pieces)
        self.prompt = self.engine.build_prompt(PromptRequest(user_text=PROMPT, language="en"),
                                               max_tokens=args.tokens).text
        self.config = bench_guard_config()
        self.chat_config = replace(Settings().chat_config(), guard=self.config)
        self.langid = LangId()
        self.toxicity = toxicity_classifier(self.config)
        self.audit = AuditLog(Path(os.environ["R1DESK_HOME"]) / "bench-audit.db")
        self.judge_paths = {name: JUDGES[name][1]() for name in args.judges}
        self.judges: dict[tuple[str, int], BenchJudge] = {}
        raw_run(self.engine, self.prompt, GenParams(max_tokens=8, seed=1))  # page the weights in

    def load_chat(self, threads: int | None) -> None:
        if threads == self.chat_threads:
            return
        self.engine.load(self.model_path, LoadOptions(n_ctx=2048, n_threads=threads, seed=0))
        self.chat_threads = threads

    def judge(self, name: str, threads: int) -> BenchJudge:
        key = (name, threads)
        if key not in self.judges:
            judge = BenchJudge(self.judge_paths[name], n_threads=threads, n_ctx=4096)
            judge.load()
            log(f"judge {name} threads {threads}: verdict tokens {judge.verdict_tokens}")
            self.judges[key] = judge
        return self.judges[key]

    def session(self, judge: BenchJudge | None, nice: int | None = None) -> ChatSession:
        classifiers: list[Any] = [self.toxicity]
        if judge is not None:
            classifiers.append(HarmClassifier(judge))
        guard = BenchGuardSession(self.config, classifiers=classifiers, langid=self.langid, worker_nice=nice)
        return ChatSession(self.backend, audit=self.audit, config=self.chat_config, guard=guard)

    # configs: name -> (chat threads (None: llama.cpp default), judge name or None, judge threads, nice)
    def run_configs(self, configs: dict[str, tuple[int | None, str | None, int, int | None]],
                    repeats: int) -> dict[str, list[dict[str, Any]]]:
        """Interleaved: every repetition runs raw (at each chat thread count used) then every config."""
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
        raw_threads = sorted({c[0] for c in configs.values()}, key=lambda t: -1 if t is None else t)
        for t in raw_threads:
            runs[f"raw@{t}"] = []
        sessions = {}
        for name, (_, judge_name, jthreads, nice) in configs.items():
            judge = self.judge(judge_name, jthreads) if judge_name else None
            sessions[name] = (self.session(judge, nice), judge)
        for rep in range(repeats):
            for t in raw_threads:
                self.load_chat(t)
                raw = raw_run(self.engine, self.prompt, self.params)
                runs[f"raw@{t}"].append(raw)
                log(f"rep {rep + 1} raw chat threads {t or 'default'}: {raw['tps']:.2f} tok/s")
                for name, (threads, *_rest) in configs.items():
                    if threads != t:
                        continue
                    session, judge = sessions[name]
                    r = guarded_run(session, self.backend, self.params, judge)
                    r["ratio"] = r["tps"] / raw["tps"]
                    runs[name].append(r)
                    log(f"rep {rep + 1} {name}: {r['tps']:.2f} tok/s ratio {r['ratio']:.3f} ttft {ms(r['ttft'])} "
                        f"hold p50/p95 {ms(r['hold_p50'])}/{ms(r['hold_p95'])} finish {r['finish']} "
                        f"{r['actions']} judge calls {r.get('calls', 0)} {r.get('judge_s', 0):.2f} s")
        return runs

    def ttft_component(self, name: str, threads: int, prompts: list[str], repeats: int) -> dict[str, Any]:
        """Time to first token: no prompt check / judge then chat / judge in a thread during the chat's
        prompt eval. The judge's KV cache is emptied first (a new turn's prompt check shares only a
        few template tokens with the previous turn's last, response-mode, call)."""
        judge = self.judge(name, threads)
        one = GenParams(max_tokens=1, seed=1)
        res: dict[str, list[dict[str, float]]] = {"none": [], "sequential": [], "concurrent": []}
        modes = list(res)
        for rep in range(repeats):
            user = prompts[rep % len(prompts)]
            chat_prompt = self.engine.build_prompt(PromptRequest(user_text=user, language="en"), max_tokens=64).text
            for mode in modes[rep % 3:] + modes[:rep % 3]:      # rotate the order
                judge.reset_cache()
                done: list[float] = []
                t0 = time.perf_counter()
                worker = None
                if mode == "sequential":
                    judge.judge_prompt(user)
                    done.append(time.perf_counter())
                elif mode == "concurrent":
                    def run() -> None:
                        judge.judge_prompt(user)
                        done.append(time.perf_counter())
                    worker = threading.Thread(target=run)
                    worker.start()
                gen = self.engine.generate(chat_prompt, one)
                for _ in gen:
                    pass
                first = time.perf_counter()
                if worker is not None:
                    worker.join()
                row = {"first": first - t0, "ready": max([first] + done) - t0,
                       "judge": (done[0] - t0) if done else 0.0,
                       "judge_tokens": float(judge.last_stats.evaluated_tokens) if done and judge.last_stats else 0.0,
                       "chat_tokens": float(gen.stats.prompt_tokens)}
                res[mode].append(row)
                log(f"ttft {name} rep {rep + 1} {mode}: first token {ms(row['first'])}, ready {ms(row['ready'])}, "
                    f"judge {ms(row['judge'])} ({row['judge_tokens']:.0f} tokens)")
        return {mode: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for mode, rows in res.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (minutes)")
    ap.add_argument("--tokens", type=int, default=None, help="tokens per generation (default 128; quick 32)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repetitions (default 3; quick 1)")
    ap.add_argument("--thread-repeats", type=int, default=None, help="repetitions of the thread table (default 1)")
    ap.add_argument("--ttft-repeats", type=int, default=None, help="prompts in the TTFT table (default --repeats)")
    ap.add_argument("--parts", default="1,2,3,4", help="which parts: 1 decode, 2 TTFT, 3 hold-back, 4 threads")
    ap.add_argument("--judges", default="qwen3,llama", help="guard models: qwen3, llama")
    args = ap.parse_args(argv)
    args.tokens = args.tokens or (32 if args.quick else 128)
    repeats = args.repeats or (1 if args.quick else 3)
    thread_repeats = args.thread_repeats or 1
    ttft_repeats = args.ttft_repeats or repeats
    args.judges = [j for j in args.judges.split(",") if j]
    parts = {int(p) for p in args.parts.split(",") if p}
    load_start = loadavg()
    started = time.perf_counter()
    log(f"load average at start: {load_start}")
    bandwidth = memory_bandwidth_gbs()
    bench = Bench(args)
    first_judge = args.judges[0] if args.judges else None
    if first_judge is None:
        parts -= {2, 4}
    default_judge_threads = Settings().guard.harm_threads

    # 1 (and 3): the app's defaults: chat model at llama.cpp's default threads, judge at the settings'
    # harm_threads, scoring worker at its default nice
    decode: dict[str, tuple[int | None, str | None, int, int | None]] = {"Detoxify": (None, None, 0, None)}
    for j in args.judges:
        decode[f"Detoxify + {j}"] = (None, j, default_judge_threads, None)
    runs = bench.run_configs(decode, repeats) if parts & {1, 3} else {}

    # 4: thread budgets (Detoxify + the first judge)
    budget: dict[str, tuple[int | None, str | None, int, int | None]] = {}
    if 4 in parts:
        budget = {"chat default · judge 1 · nice 0": (None, first_judge, 1, 0)}
        if not args.quick:
            budget = {f"chat default · judge 1 · nice {WORKER_NICE}": (None, first_judge, 1, None), **budget,
                      f"chat 2 · judge 1 · nice {WORKER_NICE}": (2, first_judge, 1, None)}
        runs4 = bench.run_configs(budget, thread_repeats)
    else:
        runs4 = {}
    bench.load_chat(None)

    # 2: time to first token
    ttft: dict[str, dict[str, Any]] = {}
    if 2 in parts:
        prompts = [PROMPT] + [s for s in models.english_corpus() if 60 < len(s) < 240 and s.endswith("?")][:8]
        for j in args.judges:
            ttft[j] = bench.ttft_component(j, default_judge_threads, prompts, ttft_repeats)

    # --- report ------------------------------------------------------------------------------------
    load_end = loadavg()
    wall = time.perf_counter() - started
    log(f"load average at end: {load_end}; {wall:.0f} s")
    chat_size = bench.model_path.stat().st_size
    judge_sizes = {j: p.stat().st_size for j, p in bench.judge_paths.items()}
    bound = bandwidth * 1e9 / chat_size
    raw_default = runs.get("raw@None") or runs4.get("raw@None") or []
    raw_tps = med(raw_default, "tps") if raw_default else float("nan")
    sent = sentence_tokens(bench.pieces, args.tokens)
    sent_tokens = statistics.median(sent) if sent else float("nan")
    sentence_s = sent_tokens / raw_tps if raw_tps == raw_tps else float("nan")

    print("## Harm filter: guard model beside the chat model (decode, TTFT, hold-back, threads)\n")
    print(f"Chat model: random-weight R1-Distill-Qwen-1.5B shapes, Q4_K_M, {chat_size / 1e9:.2f} GB. Guard models: "
          + "; ".join(f"`{j}` = {JUDGES[j][0]}, Q4_K_M, {judge_sizes[j] / 1e9:.2f} GB" for j in args.judges)
          + ". Detoxify: random-weight bert-base (`original`), 1 torch thread (the default). "
          f"{args.tokens} tokens per generation (prose text, ≈{sent_tokens:.0f} tokens per sentence), "
          f"{repeats} interleaved repetitions (thread table: {thread_repeats}), medians. Load average "
          f"(1/5/15 min) at start {load_start}, at end {load_end}; wall time {wall / 60:.1f} min"
          + (" — the machine was shared; rerun on a quiet machine for firm numbers" if
             float(load_start.split(' / ')[0]) > 1.0 else "") + ".\n")
    judge_tok = {}
    for j in args.judges:
        judge = next((v for (n, _), v in bench.judges.items() if n == j), None)
        if judge is not None:
            judge_tok[j] = judge.verdict_tokens
    print("Judge `max_tokens` = a real \"safe\" verdict in the profile's format + its end-of-turn token: "
          + ", ".join(f"{j} prompt {v['prompt']} / response {v['response']}" for j, v in judge_tok.items())
          + ". Random weights never write a verdict, so every one is \"undetermined\" and flagged; the turn "
            "runs to its end.\n")

    if runs:
        print("### 1. Decode tokens/s and time to first token (full `ChatSession.run_turn`)\n")
        print("App defaults: chat model at llama.cpp's default threads (decode: half the logical cores, "
              f"prompt: all), guard model at the settings' {default_judge_threads} threads, scoring worker at "
              "nice 5; thinking and answer held back until judged (block/redact rules apply).\n")
        print("| pipeline | tok/s | ratio to raw (per-run) | TTFT decoded | of which prompt check | first text shown "
              "| judge calls / turn | judge busy / decode time | end-of-turn wait |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        raw = runs["raw@None"]
        print(f"| raw llama-cpp-python | {med(raw, 'tps'):.2f} | 1.000 | {ms(med(raw, 'ttft'))} | – | – | – | – | – |")
        for name in decode:
            rows = runs[name]
            busy = (f"{med(rows, 'judge_s'):.1f} s / {med(rows, 'decode_s'):.1f} s" if rows and "judge_s" in rows[0]
                    else "–")
            calls = f"{med(rows, 'calls'):.0f}" if rows and "calls" in rows[0] else "–"
            per_run = ", ".join(f"{r['ratio']:.2f}" for r in rows)
            print(f"| {name} | {med(rows, 'tps'):.2f} | **{med(rows, 'ratio'):.3f}** "
                  f"({per_run}) | {ms(med(rows, 'ttft'))} | "
                  f"{ms(med(rows, 'check'))} | {ms(med(rows, 'ttft_shown'))} | {calls} | {busy} | "
                  f"{ms(med(rows, 'tail'))} |")
        finishes = {r["finish"] for name in decode for r in runs[name]}
        actions: dict[str, int] = {}
        for name in decode:
            for r in runs[name]:
                for a, n in r["actions"].items():
                    actions[a] = actions.get(a, 0) + n
        print(f"\nTurns ended: {', '.join(sorted(finishes))}; guard decisions: "
              f"{', '.join(f'{a} {n}' for a, n in sorted(actions.items())) or 'none'}. \"TTFT decoded\": turn "
              "start → first token decoded (audit log, language, prompt check, prompt build, prompt eval); "
              "\"first text shown\": → first Delta released by the hold-back.\n")

    if 3 in parts and runs:
        print("### 3. Hold-back display latency (token decoded → shown)\n")
        print(f"One sentence of decode time: {sent_tokens:.0f} tokens (median sentence of the prose) ÷ "
              f"{raw_tps:.2f} tok/s (raw) = **{ms(sentence_s)}** (the issue's target for p95).\n")
        print("| pipeline | hold-back p50 | hold-back p95 | p95 ÷ one sentence | judging lag p50 / p95 |")
        print("|---|---:|---:|---:|---|")
        for name, rows in [*((n, runs[n]) for n in decode), *((n, runs4[n]) for n in budget)]:
            p50, p95 = med(rows, "hold_p50"), med(rows, "hold_p95")
            print(f"| {name} | {ms(p50)} | {ms(p95)} | {p95 / sentence_s:.2f} | "
                  f"{ms(med(rows, 'lag_p50'))} / {ms(med(rows, 'lag_p95'))} |")
        print("\nHold-back: per turn, characters weighted, as the turn's timings report it (`core.holdback`): "
              "a character waits for the rest of its sentence to be decoded, then for the judgement. "
              "Judging lag: per release, from the arrival of the piece that completed the released text "
              "(the sentence's end) until it was shown: the guard's own share. Medians over the "
              "repetitions.\n")

    if ttft:
        print("### 2. Time to first token: prompt check before vs while the chat model reads the prompt\n")
        print(f"Component timing (engine + judge, no chat loop): the chat model evaluates the prompt and decodes "
              f"one token; the guard model (judge threads {default_judge_threads}) judges the user prompt before "
              "(sequential, as `core.chat` does today) or in a thread at the same time (concurrent). The judge's "
              "KV cache is empty at the start, as after a previous turn (its last call was response-mode, which "
              f"shares only the first template tokens); {ttft_repeats} prompts of the self-check set, medians.\n")
        print("| judge | mode | first token decoded | judge done | first token may be shown | judge tokens "
              "evaluated | chat prompt tokens |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for j, res in ttft.items():
            for mode, row in res.items():
                print(f"| {j} | {mode} | {ms(row['first'])} | {ms(row['judge']) if mode != 'none' else '–'} | "
                      f"**{ms(row['ready'])}** | {row['judge_tokens']:.0f} | {row['chat_tokens']:.0f} |")
        print()

    if runs4:
        print(f"### 4. Thread budgets (Detoxify + {first_judge}, {os.cpu_count()} logical cores)\n")
        print("\"chat default\" = llama.cpp's default (decode threads = half the logical cores, prompt threads = "
              "all); \"judge N\" = the guard model's n_threads (decode and prompt); \"nice N\" = the scoring worker "
              "thread's nice value (the judge runs on it, and llama.cpp's helper threads inherit it).\n")
        print("| split | raw tok/s (same chat threads) | guarded tok/s | ratio to raw, same threads | "
              "ratio to raw, default threads | TTFT decoded | hold-back p50 / p95 | judge busy / decode |")
        print("|---|---:|---:|---:|---:|---:|---|---:|")
        base = runs4.get("raw@None") or raw_default
        for name, (threads, *_rest) in budget.items():
            rows = runs4[name]
            raw_same = runs4[f"raw@{threads}"]
            print(f"| {name} | {med(raw_same, 'tps'):.2f} | {med(rows, 'tps'):.2f} | **{med(rows, 'ratio'):.3f}** | "
                  f"{med(rows, 'tps') / med(base, 'tps'):.3f} | {ms(med(rows, 'ttft'))} | "
                  f"{ms(med(rows, 'hold_p50'))} / {ms(med(rows, 'hold_p95'))} | "
                  f"{med(rows, 'judge_s'):.1f} s / {med(rows, 'decode_s'):.1f} s |")
        print()

    print("### The bound this machine sets\n")
    print(f"Memory bandwidth (numpy copy, read + write, all cores): {bandwidth:.1f} GB/s. Each chat token reads "
          f"the chat model once ({chat_size / 1e9:.2f} GB) → decode ≤ **{bound:.1f} tok/s**; raw measured "
          f"{raw_tps:.2f} tok/s ({raw_tps / bound:.0%} of it).")
    for j in args.judges:
        rows = runs.get(f"Detoxify + {j}") or []
        if not rows or "generated" not in rows[0]:
            continue
        passes = med(rows, "generated")          # each generated token = one pass over the judge's weights
        tokens = med(rows, "tokens")
        extra = judge_sizes[j] * passes / tokens
        combined = bandwidth * 1e9 / (chat_size + extra)
        print(f"With `{j}` judging: {passes:.0f} judge passes over {judge_sizes[j] / 1e9:.2f} GB per "
              f"{tokens:.0f}-token turn add {extra / 1e9:.3f} GB per chat token → bound **{combined:.1f} tok/s** "
              f"({combined / bound:.3f} of the chat-only bound); the judge's prompt evaluation (chunk + the "
              f"template's tail, ≈{med(rows, 'evaluated') / max(1, med(rows, 'calls')):.0f} tokens per call) is "
              "compute, not bandwidth: it takes CPU time from a 2-core machine whose decode already uses "
              "most of the bandwidth.")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
