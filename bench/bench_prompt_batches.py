"""What reporting "Reading your message… n/N tokens" costs: the prompt evaluated in one llama.cpp call
(n_batch 512, as Llama.generate does) vs in smaller batches with a report after each (core.engine
Generation._read_prompt, PROMPT_BATCH tokens a batch).

    python bench/bench_prompt_batches.py MODEL.gguf [--tokens 768] [--threads 2] [--repeats 2]
"""
from __future__ import annotations

import argparse
import time


def main() -> int:
    import llama_cpp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, default=768)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    llm = llama_cpp.Llama(args.model, n_ctx=max(2048, args.tokens + 64), n_threads=args.threads, n_batch=512,
                          verbose=False)
    tokens = [(1000 + i) % llm.n_vocab() for i in range(args.tokens)]

    def run(chunk: int) -> float:
        llm.reset()
        t = time.perf_counter()
        for i in range(0, len(tokens), chunk):
            llm.eval(tokens[i:i + chunk])
        return time.perf_counter() - t

    run(512)                                  # warm up
    best: dict[int, float] = {}
    for _ in range(args.repeats):             # interleaved, best of N (a shared machine is noisy)
        for chunk in (512, 256, 128, 64):
            best[chunk] = min(best.get(chunk, float("inf")), run(chunk))
    print("| batch | prompt tok/s | vs 512 |\n|---:|---:|---:|")
    for chunk, dt in best.items():
        print(f"| {chunk} | {len(tokens) / dt:.0f} | {best[512] / dt:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
