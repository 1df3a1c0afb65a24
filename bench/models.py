"""Builders for the benchmarks' real-size random-weight models (cached between runs).

The cost of a model is set by its shapes and quantisation, not by what its weights say, so
random weights of the real sizes cost exactly what the real models cost:

* the LLM: DeepSeek-R1-Distill-Qwen-1.5B shapes (hidden 1536, 28 layers, 12 heads, 2 KV heads,
  FFN 8960) with the real R1 tokenizer and template, quantised to Q4_K_M with llama.cpp's own
  quantiser, as users run it (tests/support/tiny_models.py writes it);
* the guard models (the harm filter): Qwen3-0.6B shapes in the Qwen3Guard-Gen format and Llama-3.2-1B
  shapes in the Llama Guard 3 format, Q4_K_M (tests/support/tiny_guard_models.py writes them);
* the classifiers: Detoxify "original" = bert-base-uncased (``BertConfig()`` defaults: 12 layers,
  hidden 768, vocab 30522) and "original-small" = albert-base-v2 (embedding 128, hidden 768,
  12 heads, FFN 3072, vocab 30000; ``AlbertConfig()``'s own defaults are albert-xxlarge, hidden
  4096, so the base sizes are set explicitly), saved in Detoxify's checkpoint format and installed
  offline with ``weights.import_weights`` exactly like the test fixture does.

The tokenizers have the real vocabulary sizes, trained here on English text (the refusal-detector
data and the self-check suite shipped with r1desk), so ordinary sentences split into a realistic
number of pieces (about 1.2-1.4 per word) and the classifiers see realistic sequence lengths.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.tiny_guard_models import LLAMA_3_2_1B, QWEN3_0_6B, cached_guard_model  # noqa: E402
from tests.support.tiny_models import R1_DISTILL_QWEN_1_5B, cached_r1_model, default_cache_dir  # noqa: E402

BERT_VOCAB = 30522
ALBERT_VOCAB = 30000
# albert-base-v2's config.json (AlbertConfig() defaults are the xxlarge model).
ALBERT_BASE = {"embedding_size": 128, "hidden_size": 768, "num_attention_heads": 12,
               "intermediate_size": 3072, "num_hidden_layers": 12, "vocab_size": ALBERT_VOCAB}
ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
# What each benchmarked Detoxify type is made of.
DETOXIFY_SHAPES = {"original": "bert-base", "original-small": "albert-base"}


def cache_dir() -> Path:
    """Where bench models live between runs (R1DESK_BENCH_MODELS overrides; default beside the test models)."""
    env = os.environ.get("R1DESK_BENCH_MODELS")
    return Path(env) if env else default_cache_dir() / "bench"


def r1_1_5b_q4_k_m() -> Path:
    """The random-weight R1-Distill-Qwen-1.5B-shaped Q4_K_M GGUF (built once, about 1.1 GB)."""
    return cached_r1_model(cache_dir(), quant="Q4_K_M", **R1_DISTILL_QWEN_1_5B)


def guard_qwen3_0_6b_q4_k_m() -> Path:
    """A random-weight guard GGUF with the Qwen3-0.6B shapes (Qwen3Guard-Gen-0.6B), Q4_K_M, in the
    Qwen3Guard-Gen input/output format (tests/support/tiny_guard_models.py; built once)."""
    return cached_guard_model(cache_dir(), "qwen3guard", quant="Q4_K_M", **QWEN3_0_6B)


def guard_llama_3_2_1b_q4_k_m() -> Path:
    """A random-weight guard GGUF with the Llama-3.2-1B shapes (Llama Guard 3 1B), Q4_K_M, in the
    Llama Guard 3 input/output format (built once)."""
    return cached_guard_model(cache_dir(), "llama-guard", quant="Q4_K_M", **LLAMA_3_2_1B)


def english_corpus() -> list[str]:
    """English sentences shipped with r1desk (self-check suite, refusal-detector data)."""
    texts: list[str] = []
    data = ROOT / "r1desk" / "core" / "selfcheck" / "data"
    for path in sorted(data.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            texts.extend(v for v in row.values() if isinstance(v, str) and len(v) > 20)
    try:
        from r1desk.core.selfcheck.builtin_suite import builtin_prompts

        texts.extend(str(getattr(p, "text", "")) for p in builtin_prompts())
    except Exception:  # the suite's shape is not this module's business; the jsonl data suffice
        pass
    return texts


def _training_text(max_files: int = 6000) -> Iterator[str]:
    """The corpus plus English docstrings of installed Python packages, for a vocabulary of real size
    (line by line: the unigram trainer fails on very long inputs)."""
    yield from english_corpus()
    import transformers

    base = Path(transformers.__file__).parent.parent
    count = 0
    for pkg in ("transformers", "torch", "numpy", "PySide6", "sqlite_utils", "huggingface_hub"):
        for path in sorted((base / pkg).rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            yield from (line[:400] for line in text.splitlines() if line.strip())
            count += 1
            if count > max_files:
                return


def _save_bert_tokenizer(hf: Path) -> None:
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizer

    tok = BertWordPieceTokenizer(lowercase=True)
    tok.train_from_iterator(_training_text(), vocab_size=BERT_VOCAB, min_frequency=1, show_progress=False)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    words = [w for w, _ in vocab]
    filler = [f"[unused{i}]" for i in range(BERT_VOCAB - len(words))]  # as bert-base's vocab has them
    ordered = words + filler
    BertTokenizer(vocab={w: i for i, w in enumerate(ordered)}, do_lower_case=True,
                  model_max_length=512).save_pretrained(hf)


def _save_albert_tokenizer(hf: Path) -> None:
    """A SentencePiece-style unigram vocabulary of 30000 pieces, made from the trained WordPiece one
    (the unigram trainer of ``tokenizers`` fails on this corpus): word starts get the "▁" prefix,
    continuations lose "##", scores fall with frequency rank."""
    from transformers import AlbertTokenizer

    bert_hf = cached_detoxify("original")[1]
    from transformers import BertTokenizer

    words = sorted(BertTokenizer.from_pretrained(str(bert_hf)).get_vocab().items(), key=lambda kv: kv[1])
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    vocab: list[tuple[str, float]] = [(t, 0.0) for t in specials]
    seen = set(specials)
    for rank, (word, _) in enumerate(words):
        if word.startswith("[") and word.endswith("]"):
            continue
        piece = word[2:] if word.startswith("##") else "\u2581" + word
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, -10.0 - rank / 10000.0))  # fewer pieces always win
    vocab = vocab[:ALBERT_VOCAB]
    while len(vocab) < ALBERT_VOCAB:
        vocab.append((f"<unused{len(vocab)}>", -100.0))
    AlbertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512).save_pretrained(hf)


def build_detoxify(model_type: str, dest: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """A random-weight Detoxify checkpoint of the real size for ``model_type``: (checkpoint, hf dir)."""
    import torch
    from transformers import (AlbertConfig, AlbertForSequenceClassification, BertConfig,
                              BertForSequenceClassification)

    shape = DETOXIFY_SHAPES[model_type]
    hf = dest / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    if shape == "bert-base":
        config = BertConfig(num_labels=len(ORIGINAL_CLASSES))
        model_cls, base, tokenizer_name = BertForSequenceClassification, "bert-base-uncased", "BertTokenizer"
        _save_bert_tokenizer(hf)
    else:
        config = AlbertConfig(num_labels=len(ORIGINAL_CLASSES), **ALBERT_BASE)
        model_cls, base, tokenizer_name = AlbertForSequenceClassification, "albert-base-v2", "AlbertTokenizer"
        _save_albert_tokenizer(hf)
    config.save_pretrained(hf)
    torch.manual_seed(seed)
    model = model_cls(config)
    ckpt = dest / f"{model_type}.ckpt"
    torch.save({
        "config": {
            "name": f"random-weight {shape} (benchmark)",
            "arch": {"type": shape, "args": {"num_classes": len(ORIGINAL_CLASSES), "model_type": base,
                                             "model_name": model_cls.__name__, "tokenizer_name": tokenizer_name}},
            "dataset": {"type": "JigsawDataOriginal", "args": {"classes": ORIGINAL_CLASSES}},
        },
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
    }, str(ckpt))
    return ckpt, hf


def cached_detoxify(model_type: str) -> tuple[Path, Path]:
    """build_detoxify once in the cache dir."""
    dest = cache_dir() / f"detoxify-{model_type}-v1"
    ckpt = dest / f"{model_type}.ckpt"
    if not ckpt.is_file():
        build_detoxify(model_type, dest)
    return ckpt, dest / "hf"


def install_detoxify(model_type: str) -> Any:
    """Install the random-weight checkpoint into the current profile (R1DESK_HOME) the offline way."""
    from r1desk.core.guard import weights

    ckpt, hf = cached_detoxify(model_type)
    return weights.import_weights(model_type, ckpt, hf)


if __name__ == "__main__":  # python bench/models.py: build everything ahead of a run
    print(r1_1_5b_q4_k_m())
    print(guard_qwen3_0_6b_q4_k_m())
    print(guard_llama_3_2_1b_q4_k_m())
    for t in DETOXIFY_SHAPES:
        print(cached_detoxify(t))
