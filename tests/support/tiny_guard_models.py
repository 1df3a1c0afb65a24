"""Random-weight guard models in the guard models' architectures, for real llama.cpp tests.

    build_guard_model(out, "qwen3guard", **TINY_GUARD)   # qwen3 architecture, Qwen3Guard-Gen format
    build_guard_model(out, "llama-guard", **TINY_GUARD)  # llama architecture, Llama Guard 3 format
    build_guard_model(out, "qwen3guard", **QWEN3_0_6B, quant="Q4_K_M")   # bench: real shapes
    cached_guard_model(cache_dir, "qwen3guard", **TINY_GUARD)

The tokenizer is the real Qwen BPE tokenizer read from the DeepSeek-R1-Distill-Qwen GGUF header
(see tiny_models.py), with its special-token slots renamed to the guard model's own control tokens
(Qwen: <|endoftext|>, <|im_start|>, <|im_end|>; Llama 3: <|begin_of_text|>, <|start_header_id|>,
<|end_header_id|>, <|eot_id|>, <|end_of_text|>), so the same text-level contract holds: the chat
template writes those tokens and the model's end-of-turn token ends its answer. The chat template
is the profile's built-in template (the documented input format). Token ids differ from the real
models' (a test must never rely on ids). Weights are random: the models answer nonsense, which a
strict parser reads as "undetermined".
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tests.support import tiny_models

TINY_GUARD: dict[str, int] = {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "ffn": 128}
# Real shapes (config.json of Qwen3-0.6B, the base of Qwen3Guard-Gen-0.6B, and of Llama-3.2-1B).
QWEN3_0_6B: dict[str, int] = {"hidden": 1024, "layers": 28, "heads": 16, "kv_heads": 8, "ffn": 3072,
                              "head_dim": 128}
LLAMA_3_2_1B: dict[str, int] = {"hidden": 2048, "layers": 16, "heads": 32, "kv_heads": 8, "ffn": 8192}
BUILDER_VERSION = "1"

KINDS = {
    "qwen3guard": {"arch": "qwen3", "name": "Tiny Qwen3Guard-Gen test model", "vocab": 151936,
                   "rope_base": 1_000_000.0,
                   # R1 slot -> Qwen special token
                   "specials": {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"},
                   "eos": "<|im_end|>", "bos": "<|endoftext|>", "add_bos": False},
    "llama-guard": {"arch": "llama", "name": "Tiny Llama Guard 3 test model", "vocab": 152064,
                    "rope_base": 500_000.0,
                    "specials": {151643: "<|end_of_text|>", 151644: "<|start_header_id|>",
                                 151645: "<|end_header_id|>", 151646: "<|begin_of_text|>",
                                 151647: "<|eot_id|>"},
                    "eos": "<|eot_id|>", "bos": "<|begin_of_text|>", "add_bos": True},
}
_CONTROL = 3   # gguf TokenType.CONTROL


def _template(kind: str) -> str:
    from r1desk.core.guard.harm.templates import LLAMA_GUARD_3_TEMPLATE, QWEN3GUARD_TEMPLATE

    return QWEN3GUARD_TEMPLATE if kind == "qwen3guard" else LLAMA_GUARD_3_TEMPLATE


def _tokenizer(kind: str, source: Path | None) -> dict[str, tuple[Any, int, int | None]]:
    spec = KINDS[kind]
    tok = tiny_models.read_r1_tokenizer(source)
    tokens = list(tok["tokenizer.ggml.tokens"][0])[: spec["vocab"]]
    types = list(tok["tokenizer.ggml.token_type"][0])[: spec["vocab"]]
    for slot, text in spec["specials"].items():
        tokens[slot] = text
        types[slot] = _CONTROL
    ids = {t: i for i, t in enumerate(tokens)}
    out = {k: v for k, v in tok.items() if k not in {"tokenizer.chat_template", "tokenizer.ggml.padding_token_id"}}
    out["tokenizer.ggml.tokens"] = (tokens, *tok["tokenizer.ggml.tokens"][1:])
    out["tokenizer.ggml.token_type"] = (types, *tok["tokenizer.ggml.token_type"][1:])
    out["tokenizer.ggml.pre"] = ("qwen2", *tok["tokenizer.ggml.pre"][1:])
    out["tokenizer.ggml.bos_token_id"] = (ids[spec["bos"]], *tok["tokenizer.ggml.bos_token_id"][1:])
    out["tokenizer.ggml.eos_token_id"] = (ids[spec["eos"]], *tok["tokenizer.ggml.eos_token_id"][1:])
    out["tokenizer.ggml.add_bos_token"] = (False, *tok["tokenizer.ggml.add_bos_token"][1:])
    out["tokenizer.chat_template"] = (_template(kind), int(__import__("gguf").GGUFValueType.STRING), None)
    return out


def _plan(arch: str, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int,
          head_dim: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    yield "token_embd.weight", (vocab, hidden)
    for i in range(layers):
        b = f"blk.{i}"
        yield f"{b}.attn_norm.weight", (hidden,)
        yield f"{b}.attn_q.weight", (q_dim, hidden)
        yield f"{b}.attn_k.weight", (kv_dim, hidden)
        yield f"{b}.attn_v.weight", (kv_dim, hidden)
        if arch == "qwen3":
            yield f"{b}.attn_q_norm.weight", (head_dim,)
            yield f"{b}.attn_k_norm.weight", (head_dim,)
        yield f"{b}.attn_output.weight", (hidden, q_dim)
        yield f"{b}.ffn_norm.weight", (hidden,)
        yield f"{b}.ffn_gate.weight", (ffn, hidden)
        yield f"{b}.ffn_up.weight", (ffn, hidden)
        yield f"{b}.ffn_down.weight", (hidden, ffn)
    yield "output_norm.weight", (hidden,)
    yield "output.weight", (vocab, hidden)


def _write_f16(out_path: Path, kind: str, *, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int,
               head_dim: int | None, context_length: int, seed: int, source: Path | None) -> None:
    import gguf

    spec = KINDS[kind]
    arch = spec["arch"]
    if heads % kv_heads:
        raise ValueError("heads must divide by kv_heads")
    head_dim = head_dim or hidden // heads
    tokenizer = _tokenizer(kind, source)
    vocab = len(tokenizer["tokenizer.ggml.tokens"][0])
    w = gguf.GGUFWriter(out_path, arch)
    w.add_name(f"{spec['name']} h{hidden} l{layers}")
    w.add_block_count(layers)
    w.add_context_length(context_length)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(spec["rope_base"])
    w.add_layer_norm_rms_eps(1e-6 if arch == "qwen3" else 1e-5)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    for key, (value, vtype, item_type) in tokenizer.items():
        w.add_key_value(key, value, gguf.GGUFValueType(vtype),
                        sub_type=gguf.GGUFValueType(item_type) if item_type is not None else None)
    plan = list(_plan(arch, vocab, hidden, layers, heads, kv_heads, ffn, head_dim))
    for name, shape in plan:
        dtype = np.dtype(np.float32 if len(shape) == 1 else np.float16)
        w.add_tensor_info(name, shape, dtype, int(np.prod(shape)) * dtype.itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for name, shape in plan:
        w.write_tensor_data(tiny_models._tensor_values(name, shape, rng))
    w.close()


def build_guard_model(out_path: str | os.PathLike[str], kind: str, *, hidden: int, layers: int, heads: int,
                      kv_heads: int, ffn: int, head_dim: int | None = None, quant: str | None = None,
                      context_length: int = 8192, seed: int = 0, source: Path | None = None) -> Path:
    """Write a random-weight guard GGUF (``kind``: "qwen3guard" or "llama-guard"), atomically."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=out_path.name, suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    f16 = tmp.with_suffix(".f16.part") if quant else tmp
    try:
        _write_f16(f16, kind, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, ffn=ffn,
                   head_dim=head_dim, context_length=context_length, seed=seed, source=source)
        if quant:
            tiny_models.quantize(f16, tmp, quant)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    finally:
        for leftover in {tmp, f16}:
            leftover.unlink(missing_ok=True)
    return out_path


def cached_guard_model(cache_dir: Path, kind: str, *, quant: str | None = None, **shape: int) -> Path:
    """build_guard_model once per content key (builder, template, shape, tokenizer source)."""
    source = tiny_models.r1_source_path()
    if source is None:
        raise FileNotFoundError(f"the {tiny_models.R1_PART_PACKAGE} package is not installed")
    st = source.stat()
    key_text = repr((BUILDER_VERSION, kind, _template(kind), sorted(shape.items()), quant, st.st_size,
                     st.st_mtime_ns))
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    dims = "-".join(f"{k}{v}" for k, v in shape.items())
    out = Path(cache_dir) / f"tiny-{kind}-{dims}-{quant or 'F16'}-{key}.gguf"
    if not out.is_file():
        build_guard_model(out, kind, quant=quant, source=source, **shape)
    return out
