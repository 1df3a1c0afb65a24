"""Hostile inputs, built cheaply: GGUF headers written by hand, made huge with sparse files.

``f.truncate(size)`` after a small header makes a file of any size with no data on disk: the
reader sees zeros (empty strings, zero counts) where the header says data follows.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

U8, U32, I32, F32, STRING, ARRAY, U64 = 0, 4, 5, 6, 8, 9, 10
F32_TYPE = 0          # ggml type of an f32 tensor


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_str(key: str, value: str | bytes) -> bytes:
    return s(key) + struct.pack("<I", STRING) + s(value)


def kv_u32(key: str, value: int) -> bytes:
    return s(key) + struct.pack("<II", U32, value)


def kv_array_header(key: str, item_type: int, count: int) -> bytes:
    return s(key) + struct.pack("<IIQ", ARRAY, item_type, count)


def tensor(name: str, shape: tuple[int, ...], offset: int = 0, ggml_type: int = F32_TYPE) -> bytes:
    return s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape) + \
        struct.pack("<IQ", ggml_type, offset)


def header(n_tensors: int, n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)


def write(path: Path, data: bytes, *, sparse_size: int | None = None) -> Path:
    with open(path, "wb") as fh:
        fh.write(data)
        if sparse_size is not None:
            fh.truncate(sparse_size)
    return path


def small_model(path: Path, *, extra_kvs: list[bytes] = (), arch: str = "llama", name: str = "hostile test",
                shape_70b: bool = False) -> Path:
    """A valid llama header with one 16-float tensor (the data padded in)."""
    kvs = [kv_str("general.architecture", arch), kv_str("general.name", name),
           kv_u32(f"{arch}.context_length", 4096)]
    if shape_70b:          # the attention shape of a 70B llama: 320 KB of KV cache per token
        kvs += [kv_u32(f"{arch}.block_count", 80), kv_u32(f"{arch}.embedding_length", 8192),
                kv_u32(f"{arch}.attention.head_count", 64), kv_u32(f"{arch}.attention.head_count_kv", 8)]
    kvs += list(extra_kvs)
    body = header(1, len(kvs)) + b"".join(kvs) + tensor("token_embd.weight", (16,))
    body += b"\0" * ((-len(body)) % 32) + b"\0" * 64
    return write(path, body)


# -- the hostile GGUF files of issue 11 --------------------------------------------------------------
def _with_tensor_after(path: Path, head: bytes, hole: int) -> Path:
    """``head``, then ``hole`` bytes of sparse zeros (what the header's last value claims), then one
    valid tensor record and its data: a well-formed file of any size with almost nothing on disk."""
    tail = tensor("token_embd.weight", (16,))
    end = len(head) + hole + len(tail)
    tail += b"\0" * ((-end) % 32) + b"\0" * 64
    with open(path, "wb") as fh:
        fh.write(head)
        fh.seek(len(head) + hole)
        fh.write(tail)
    return path


def huge_u8_array(path: Path, nbytes: int = 256 << 20) -> Path:
    head = header(1, 2) + kv_str("general.architecture", "llama") + kv_array_header("junk", U8, nbytes)
    return _with_tensor_after(path, head, nbytes)


def nested_arrays(path: Path, count: int = 20_000_000) -> Path:
    """An array of `count` empty u8 arrays (12 zero bytes each on disk: a sparse hole)."""
    kvs = kv_str("general.architecture", "llama") + kv_array_header("junk", ARRAY, count)
    return write(path, header(0, 2) + kvs, sparse_size=len(header(0, 2) + kvs) + 12 * count + 4096)


def many_tensors(path: Path, count: int = 10_000_000) -> Path:
    kvs = kv_str("general.architecture", "llama")
    return write(path, header(count, 1) + kvs, sparse_size=len(header(count, 1) + kvs) + 40 * count + 4096)


def huge_name(path: Path, nbytes: int = 2 << 30) -> Path:
    """general.name is 2 GB long (sparse: NUL bytes); a valid tensor follows it."""
    head = header(1, 2) + kv_str("general.architecture", "llama") + s("general.name") + \
        struct.pack("<IQ", STRING, nbytes)
    return _with_tensor_after(path, head, nbytes)


def control_name(path: Path) -> Path:
    """A name that would retitle the terminal and recolour it, 5000 characters long."""
    return small_model(path, name="\x1b]0;pwned\x07\x1b[31mevil" + "N" * 5000)


def huge_string_array(path: Path, count: int = 1 << 28) -> Path:
    """tokenizer.ggml.tokens claims 268M strings (2 GB of zero lengths)."""
    head = header(0, 2) + kv_str("general.architecture", "llama") + \
        kv_array_header("tokenizer.ggml.tokens", STRING, count)
    return write(path, head, sparse_size=len(head) + 8 * count + 4096)


def duplicate_arch(path: Path) -> Path:
    """`bert` first, `llama` second: the old reader kept the last one."""
    kvs = [kv_str("general.architecture", "bert"), kv_str("general.architecture", "llama")]
    body = header(1, 2) + b"".join(kvs) + tensor("token_embd.weight", (16,))
    return write(path, body + b"\0" * ((-len(body)) % 32) + b"\0" * 64)


def symlink_loop(folder: Path, name: str = "loop.gguf") -> Path:
    a, b = folder / name, folder / (name + ".other")
    os.symlink(b, a)
    os.symlink(a, b)
    return a


def fifo(folder: Path, name: str = "pipe.gguf") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


# -- hostile chat templates --------------------------------------------------------------------------
TEMPLATES = {
    "nested_range": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "huge_repeat": "{{ 'A' * 3000000000 }}",
    "syntax_error": "{% for m in messages %}{{ m.content }",
    "concat_doubling": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                       "{% endfor %}{{ ns.s }}",
    "format_width": "{{ '%3000000000d'|format(1) }}",
}
BIG_TEMPLATE_BYTES = 50 * 1024 * 1024


def big_template() -> str:
    """50 MB of template that renders (each message 1000 times over and over)."""
    unit = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    return unit * (BIG_TEMPLATE_BYTES // len(unit))


def template_model(path: Path, template: str) -> Path:
    return small_model(path, extra_kvs=[kv_str("tokenizer.chat_template", template)])
