"""The remote backend vs the in-process backend, for the same tiny R1 model, in one run.

* tokens/s and time to first token: llama.cpp in process (core.engine.Engine) vs the same GGUF served by
  llama-cpp-python's own OpenAI-compatible server on 127.0.0.1 (core.remote, streamed SSE), same threads,
  same seeds, same prompt;
* the client's own overhead per token: CPU time of the consuming thread (socket reads, SSE and JSON
  parsing, the thinking joiner) per streamed piece, against a server that sends pre-built chunks as fast
  as it can (so nothing but the client is measured) and against the real server;
* the guard's decode ratio on the remote path: guarded tokens/s / unguarded tokens/s through ChatSession
  (real fastText language id; a scripted toxicity scorer — bench_guard.py measures the real classifiers'
  cost, which on the remote path competes with nothing on the client but the client itself).

    python bench/bench_remote.py [--runs 5] [--tokens 128] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from r1desk.core.backend import BackendConfig, open_backend  # noqa: E402
from r1desk.core.chat import ChatSession, TurnRequest  # noqa: E402
from r1desk.core.engine import Engine, GenParams, LoadOptions  # noqa: E402
from r1desk.core.events import TurnFinished  # noqa: E402
from r1desk.core.guard.session import GuardSession  # noqa: E402
from r1desk.core.guard.toxicity import ToxicityClassifier  # noqa: E402
from r1desk.core.prompts import PromptRequest  # noqa: E402
from r1desk.settings import Settings  # noqa: E402
from tests.support import tiny_models  # noqa: E402
from tests.support.fake_openai import FakeOpenAIServer, Scenario  # noqa: E402
from tests.support.llama_server import LlamaServer  # noqa: E402
from tests.support.scorers import ScriptedScorer  # noqa: E402

PROMPT = "Explain step by step why the sky is blue."


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def run_backend(backend: Any, runs: int, tokens: int) -> dict[str, float]:
    ttft, rate, cpu_per_piece = [], [], []
    built = backend.build_prompt(PromptRequest(PROMPT), max_tokens=tokens)
    for i in range(runs + 1):                       # run 0 warms up (prompt cache, connections)
        params = GenParams(max_tokens=tokens, seed=1000 + i)
        stream = backend.stream(built, params, threading.Event())
        c0 = time.thread_time()
        pieces = sum(1 for _ in stream)
        cpu = time.thread_time() - c0
        st = stream.stats
        if i == 0 or st is None:
            continue
        if st.time_to_first_token_s is not None:
            ttft.append(st.time_to_first_token_s)
        if st.decode_tokens_per_s:
            rate.append(st.decode_tokens_per_s)
        if pieces:
            cpu_per_piece.append(cpu / pieces * 1e6)
    return {"ttft_ms": median(ttft) * 1e3, "tokens_per_s": median(rate), "consumer_cpu_us_per_token": median(cpu_per_piece)}


def client_overhead(pieces: int, runs: int) -> dict[str, float]:
    """Client CPU per token against a server with nothing to compute (pre-built vLLM-shaped chunks)."""
    half = pieces // 2
    scenario = Scenario(shape="vllm", thinking=[f"t{i} " for i in range(half)], answer=[f"a{i} " for i in range(half)])
    with FakeOpenAIServer(scenario) as srv:
        backend = open_backend(BackendConfig(kind="openai", model=scenario.model_id, options={"url": srv.url}))
        built = backend.build_prompt(PromptRequest(PROMPT), max_tokens=pieces)
        per_token, wall = [], []
        for _ in range(runs + 1):
            stream = backend.stream(built, GenParams(max_tokens=pieces), threading.Event())
            c0, w0 = time.thread_time(), time.perf_counter()
            n = sum(1 for _ in stream)
            per_token.append((time.thread_time() - c0) / n * 1e6)
            wall.append((time.perf_counter() - w0) / n * 1e6)
    return {"pieces": pieces, "cpu_us_per_token": median(per_token[1:]), "wall_us_per_token": median(wall[1:])}


def guard_ratio(url: str, model: str, runs: int, tokens: int) -> dict[str, float]:
    settings = Settings()
    settings.language.target = "off"
    config = settings.chat_config()
    backend = open_backend(BackendConfig(kind="openai", model=model, options={"url": url}))
    out: dict[str, list[float]] = {"guarded": [], "unguarded": []}
    from r1desk.core.guard.langid import LangId

    langid = LangId()
    for mode in ("unguarded", "guarded"):
        guard = GuardSession(config.guard, enabled=mode == "guarded", classifiers=[ToxicityClassifier(ScriptedScorer())],
                             langid=langid)
        session = ChatSession(backend, audit=None, config=config, guard=guard, guarded=mode == "guarded")
        for i in range(runs + 1):
            req = TurnRequest(PROMPT, language=None, params=GenParams(max_tokens=tokens, seed=2000 + i))
            result = [e.result for e in session.run_turn(req) if isinstance(e, TurnFinished)][-1]
            if i and result.usage.get("decode_tokens_per_s"):
                out[mode].append(result.usage["decode_tokens_per_s"])
        session.close()
    g, u = median(out["guarded"]), median(out["unguarded"])
    return {"guarded_tokens_per_s": g, "unguarded_tokens_per_s": u, "decode_ratio": g / u if u else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = tiny_models.cached_r1_model(tiny_models.default_cache_dir(), **tiny_models.TINY_R1)
    results: dict[str, Any] = {"model": model.name, "runs": args.runs, "max_tokens": args.tokens,
                               "threads": args.threads}
    engine = Engine()
    engine.load(model, LoadOptions(n_ctx=2048, n_threads=args.threads, gpu_layers="none"))
    results["in_process"] = run_backend(engine, args.runs, args.tokens)
    engine.unload()
    with LlamaServer(model, n_ctx=2048, threads=args.threads) as server:
        remote = open_backend(BackendConfig(kind="openai", model=server.alias, options={"url": server.url}))
        results["remote"] = run_backend(remote, args.runs, args.tokens)
        results["guard_remote"] = guard_ratio(server.url, server.alias, args.runs, args.tokens)
    results["client_overhead"] = client_overhead(2000, args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    lp, rm, co, gr = results["in_process"], results["remote"], results["client_overhead"], results["guard_remote"]
    print(f"model {results['model']}, {args.runs} runs x {args.tokens} tokens, {args.threads} thread(s)")
    print(f"{'':28}{'tokens/s':>10}{'TTFT ms':>10}{'client CPU µs/token':>22}")
    print(f"{'in process (llama.cpp)':28}{lp['tokens_per_s']:>10.1f}{lp['ttft_ms']:>10.1f}{lp['consumer_cpu_us_per_token']:>22.0f}")
    print(f"{'remote (llama_cpp.server)':28}{rm['tokens_per_s']:>10.1f}{rm['ttft_ms']:>10.1f}{rm['consumer_cpu_us_per_token']:>22.0f}")
    print(f"client overhead alone ({co['pieces']} pre-built chunks): {co['cpu_us_per_token']:.0f} µs/token CPU, "
          f"{co['wall_us_per_token']:.0f} µs/token wall")
    print(f"guard on the remote path: {gr['guarded_tokens_per_s']:.1f} vs {gr['unguarded_tokens_per_s']:.1f} tokens/s, "
          f"decode ratio {gr['decode_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
