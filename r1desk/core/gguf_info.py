"""What a GGUF file is, read from its header alone (no weights loaded, no memory map).

A GGUF file is a small header (key/value metadata, then one record per tensor) followed by the
tensor data. Everything r1desk shows about a model (architecture, size, quantisation, context
length, chat template, whether it is a DeepSeek-R1 model) comes from that header, so reading it
takes the same few hundred milliseconds for a 100 MB or a 40 GB file. The same pass checks that
the file is complete (the tensor data the header declares is really there), so a corrupt or
truncated download is rejected here with a plain message and never reaches llama.cpp's C code.

A GGUF comes from anyone on the Hub, so the reader assumes the header lies. Its bounds:

* every length and count is checked against what is left of the file before anything is read or
  allocated (a claim the file cannot hold is "truncated"), and against the limits below ("corrupt");
* at most ``MAX_KV`` fields with keys of at most ``MAX_KEY_BYTES``, ``MAX_TENSORS`` tensors with names
  of at most ``MAX_TENSOR_NAME_BYTES`` and ``MAX_DIMS`` dimensions; a key or tensor name that appears
  twice is "corrupt" (llama.cpp would take one of them; we would show the other);
* values that model info does not use are skipped with a seek, never read: scalar arrays of any size
  cost nothing; strings inside skipped arrays are stepped over one by one, at most
  ``MAX_WALKED_ITEMS`` in the whole header (a real tokenizer: under 500k); arrays nest at most
  ``MAX_ARRAY_DEPTH`` deep;
* a metadata string over ``MAX_STRING_BYTES`` is not decoded (``Oversized``); the only array decoded
  is the vocabulary: at most ``MAX_KEPT_ITEMS`` items and ``MAX_KEPT_BYTES`` bytes;
* only regular files are read (a FIFO or a device is refused by name, never opened for a blocking read).

So any file is answered in well under a second and about 100 MB of memory at worst (a maximal
vocabulary), whatever its size or content. Text from the header that is shown (the name, the size
label) has its control characters made visible and is cut to ``MAX_SHOWN_CHARS``; the chat template is
validated once by ``core.chat_template.check_template`` (``ModelInfo.chat_template_problem``).
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from r1desk import paths
from r1desk.errors import ModelFileError
from r1desk.fileutil import atomic_write_text, file_kind
from r1desk.core import model_name
from r1desk.textsafe import printable

log = logging.getLogger("r1desk.models")

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# Architectures llama.cpp runs as text-generation models (the names it writes in
# general.architecture). Anything else gets a clear "unsupported" error before llama.cpp sees it.
SUPPORTED_ARCHITECTURES = frozenset({
    "llama", "llama4", "mistral", "mistral3", "mixtral", "qwen", "qwen2", "qwen2moe", "qwen3",
    "qwen3moe", "gemma", "gemma2", "gemma3", "gemma3n", "phi2", "phi3", "phimoe", "deepseek",
    "deepseek2", "starcoder", "starcoder2", "falcon", "falcon-h1", "gpt2", "gptj", "gptneox",
    "stablelm", "mpt", "bloom", "baichuan", "internlm2", "minicpm", "minicpm3", "command-r",
    "cohere2", "olmo", "olmo2", "olmoe", "granite", "granitemoe", "exaone", "exaone4", "chatglm",
    "glm4", "glm4moe", "nemotron", "smollm3", "orion", "xverse", "openelm", "arctic", "dbrx",
    "jais", "refact", "plamo", "plamo2", "codeshell", "ernie4_5", "ernie4_5-moe", "hunyuan-moe",
    "hunyuan-dense", "gpt-oss", "seed_oss", "mamba", "mamba2", "rwkv6", "rwkv7", "jamba",
    "bitnet", "chameleon", "apertus", "granitehybrid", "lfm2", "dots1", "arcee", "bailingmoe",
})
# Architectures llama.cpp loads but that cannot chat (sentence embedders, encoders).
EMBEDDING_ARCHITECTURES = frozenset({
    "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "t5encoder", "neo-bert", "modern-bert",
})

# The DeepSeek-R1 chat markers: an R1 model's tokenizer (or template) carries all three.
R1_MARKERS = ("<｜User｜>", "<｜Assistant｜>", "<think>")

# GGUF value types (gguf-py GGUFValueType) and how to unpack the fixed-size ones.
_T_UINT8, _T_INT8, _T_UINT16, _T_INT16, _T_UINT32, _T_INT32, _T_FLOAT32, _T_BOOL = range(8)
_T_STRING, _T_ARRAY, _T_UINT64, _T_INT64, _T_FLOAT64 = range(8, 13)
_SCALAR = {
    _T_UINT8: "<B", _T_INT8: "<b", _T_UINT16: "<H", _T_INT16: "<h", _T_UINT32: "<I",
    _T_INT32: "<i", _T_FLOAT32: "<f", _T_BOOL: "<?", _T_UINT64: "<Q", _T_INT64: "<q",
    _T_FLOAT64: "<d",
}
# Bounds on what a header may claim (the module docstring explains them). A claim beyond what
# the file can hold is "truncated"; a claim beyond these limits is "corrupt".
MAX_KV = 10_000                  # metadata fields (real models: 30-60)
MAX_KEY_BYTES = 1024             # one key (real keys: under 100 bytes)
MAX_TENSORS = 100_000            # tensor records (real models: a few thousand)
MAX_TENSOR_NAME_BYTES = 256      # llama.cpp's own limit is 64
MAX_DIMS = 4                     # GGML_MAX_DIMS
MAX_ALIGNMENT = 1 << 20
MAX_STRING_BYTES = 1 << 20       # a metadata string longer than this is skipped, never decoded
MAX_ARRAY_DEPTH = 2              # an array of arrays, no deeper
MAX_WALKED_ITEMS = 2_000_000     # strings and nested arrays stepped over, all arrays together
MAX_KEPT_ITEMS = 1 << 20         # items of one decoded array (a vocabulary: 32k-262k)
MAX_KEPT_BYTES = 32 << 20        # bytes of all decoded array items together
MAX_SPECIAL_TOKEN_CHARS = 256    # a longer BOS/EOS token text is ignored (it goes into every prompt)
_MAX_KV = MAX_KV                 # old names
_MAX_TENSORS = MAX_TENSORS
_MAX_DIMS = MAX_DIMS


@dataclass(frozen=True)
class ModelInfo:
    """What the app shows and decides from, without loading the weights."""

    path: Path
    name: str
    architecture: str
    parameter_count: int | None
    quantization: str | None        # e.g. "Q4_K_M", "Q4_1", "F16"
    context_length: int | None
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    size_bytes: int
    is_r1: bool                     # from tokenizer tokens / template, never the file name
    block_count: int | None = None  # transformer layers (for GPU offload estimates)
    vocab_size: int | None = None
    size_label: str | None = None   # general.size_label, e.g. "7B"
    chat_template_problem: str | None = None   # why the template is not used (core.chat_template), if so
    kv_bytes_per_token: int | None = None      # f16 K+V cache bytes per context position (memory estimates)
    display_name: str = ""                      # what the app shows (core.model_name); ``name`` is general.name

    @property
    def shown_name(self) -> str:
        """The name to show people: general.name, or the file name when the converter made that up."""
        return self.display_name or self.name

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the CLI's --json and the audit log's model record)."""
        return {
            "path": str(self.path), "name": self.name, "architecture": self.architecture,
            "parameter_count": self.parameter_count, "quantization": self.quantization,
            "context_length": self.context_length, "chat_template": self.chat_template,
            "bos_token": self.bos_token, "eos_token": self.eos_token,
            "size_bytes": self.size_bytes, "is_r1": self.is_r1, "block_count": self.block_count,
            "vocab_size": self.vocab_size, "size_label": self.size_label,
            "chat_template_problem": self.chat_template_problem, "kv_bytes_per_token": self.kv_bytes_per_token,
            "display_name": self.shown_name,
        }


@dataclass(frozen=True)
class TensorRecord:
    name: str
    shape: tuple[int, ...]          # GGUF order (ne0 first)
    ggml_type: int
    offset: int                     # relative to the start of the tensor data


@dataclass
class GGUFHeader:
    """The parsed header: every key/value field and every tensor record."""

    version: int
    fields: dict[str, Any]
    field_types: dict[str, tuple[int, int | None]]   # key -> (value type, array item type)
    tensors: list[TensorRecord] = field(default_factory=list)
    data_offset: int = 0            # where the tensor data starts in the file
    data_size: int | None = None    # bytes of tensor data the header declares (None: unknown type)


class _Truncated(Exception):
    """The file ended inside the header."""


class _Corrupt(Exception):
    """The header holds values no real GGUF has."""


@dataclass(frozen=True)
class Oversized:
    """A metadata string longer than MAX_STRING_BYTES: skipped, never decoded; only its length kept."""

    nbytes: int

    def __str__(self) -> str:
        return f"<{self.nbytes} bytes, not read>"


def _describe_key(raw: bytes) -> str:
    return repr(raw[:60].decode("utf-8", errors="replace"))


_U64 = struct.Struct("<Q")


class _Reader:
    """Little-endian reads from a buffered file that raise _Truncated at end of file.

    The position is tracked here rather than asked of the file: a tokenizer has 150k strings and
    a tell() per string would cost a system call each. What is not needed is skipped with a seek,
    never read into memory; the budgets below bound what is walked and what is kept.
    """

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.pos = 0
        self.walked = 0             # strings and nested arrays stepped over so far
        self.kept_bytes = 0         # bytes of decoded array items so far

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated()

    def read(self, n: int) -> bytes:
        self.need(n)
        data = self.fh.read(n)
        if len(data) != n:
            raise _Truncated()
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        self.need(n)
        if n:
            self.fh.seek(n, os.SEEK_CUR)
            self.pos += n

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def raw_string(self, limit: int, what: str) -> bytes:
        length = self.unpack("<Q")
        self.need(length)
        if length > limit:
            raise _Corrupt(f"{what} is {length} bytes long (the limit is {limit})")
        return self.read(length)

    def string(self, *, limit: int = MAX_STRING_BYTES) -> str | Oversized:
        length = self.unpack("<Q")
        self.need(length)
        if length > limit:
            self.skip(length)
            return Oversized(length)
        return self.read(length).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.skip(self.unpack("<Q"))

    def skip_strings(self, count: int) -> None:
        """Step over ``count`` strings, parsing their lengths from 64 KB chunks (about 0.2 µs each)."""
        unpack = _U64.unpack_from
        while count:
            chunk = self.fh.read(min(1 << 16, self.size - self.pos))
            if len(chunk) < 8:
                raise _Truncated()
            off, n = 0, len(chunk)
            while count and off + 8 <= n:
                off += 8 + unpack(chunk, off)[0]
                count -= 1
            self.need(off)
            self.pos += off
            self.fh.seek(self.pos)

    def _walk(self, count: int) -> None:
        self.walked += count
        if self.walked > MAX_WALKED_ITEMS:
            raise _Corrupt(f"more than {MAX_WALKED_ITEMS} array items to step over")

    def value(self, vtype: int, *, keep: bool = True) -> Any:
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == _T_STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if vtype == _T_ARRAY:
            item_type = self.unpack("<I")
            count = self.unpack("<Q")
            return self.array(item_type, count, keep=keep)
        raise _Corrupt(f"unknown value type {vtype}")

    def array(self, item_type: int, count: int, *, keep: bool, depth: int = 1) -> Any:
        if depth > MAX_ARRAY_DEPTH:
            raise _Corrupt(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
        if keep and count > MAX_KEPT_ITEMS:
            raise _Corrupt(f"an array of {count} items (the limit is {MAX_KEPT_ITEMS})")
        if item_type in _SCALAR:
            fmt = _SCALAR[item_type]
            width = struct.calcsize(fmt)
            self.need(count * width)
            if not keep:
                self.skip(count * width)            # a seek: nothing is read
                return None
            self._keep(count * width)
            return list(struct.unpack(f"<{count}{fmt[1]}", self.read(count * width)))
        if item_type == _T_STRING:
            self.need(count * 8)                    # every string has an 8-byte length
            self._walk(count)
            if not keep:
                self.skip_strings(count)
                return None
            items: list[Any] = []
            for _ in range(count):
                length = self.unpack("<Q")
                self._keep(length)
                items.append(self.read(length).decode("utf-8", errors="replace"))
            return items
        if item_type == _T_ARRAY:
            self.need(count * 12)                   # each nested array has a 12-byte header
            self._walk(count)
            nested = []
            for _ in range(count):
                inner_type = self.unpack("<I")
                inner_count = self.unpack("<Q")
                nested.append(self.array(inner_type, inner_count, keep=keep, depth=depth + 1))
            return nested if keep else None
        raise _Corrupt(f"unknown array item type {item_type}")

    def _keep(self, nbytes: int) -> None:
        self.kept_bytes += nbytes
        if self.kept_bytes > MAX_KEPT_BYTES:
            raise _Corrupt(f"more than {MAX_KEPT_BYTES >> 20} MiB of array data to decode")


# The only arrays model info decodes; every other array is stepped over (keep_all decodes all).
_KEEP_ARRAYS = frozenset({"tokenizer.ggml.tokens"})


def _error(path: Path, what: str, hint: str | None = None) -> ModelFileError:
    return ModelFileError(f"{printable(str(path))}: {what}", hint=hint)


def _check_path(path: Path) -> int:
    """The bad-file cases that need no reading; returns the file size."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _error(path, "is a symbolic link loop (the links point at each other)") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            if path.is_symlink():
                raise _error(path, "is a broken symbolic link (its target does not exist)") from None
            raise _error(path, "no such file") from None
        raise _error(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise _error(path, "is a folder, not a GGUF model file")
    kind = file_kind(st.st_mode)
    if kind:
        raise _error(path, f"is not a regular file ({kind}), not a GGUF model file")
    if st.st_size == 0:
        raise _error(path, "is empty (0 bytes), not a GGUF model file")
    return st.st_size


def read_gguf_header(path: str | os.PathLike[str], *, keep_all: bool = False,
                     header_only: bool = False) -> GGUFHeader:
    """Parse the header of a GGUF file; raises ModelFileError for anything that is not a whole GGUF.

    ``keep_all`` also decodes the big tokenizer arrays (merges, scores) that model info skips;
    ``header_only`` accepts a file whose tensor data is cut off. The test-model builder uses both
    to copy the real tokenizer out of the first part of a split download.
    """
    path = Path(path)
    size = _check_path(path)
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the check above must not hang the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb", buffering=1 << 16) as fh:
            if file_kind(os.fstat(fd).st_mode):
                raise _error(path, "is not a regular file, not a GGUF model file")
            return _parse(path, _Reader(fh, size), keep_all=keep_all, header_only=header_only)
    except _Truncated:
        raise _error(path, f"the GGUF file is truncated (it ends inside its header after {size} bytes)",
                     hint="the download or copy was probably interrupted; get the file again") from None
    except _Corrupt as exc:
        raise _error(path, f"the GGUF header is corrupt ({exc})") from None
    except OSError as exc:
        raise _error(path, f"cannot read the file ({exc.strerror or exc})") from exc


def _parse(path: Path, r: _Reader, *, keep_all: bool, header_only: bool) -> GGUFHeader:
    magic = r.fh.read(4)
    r.pos = len(magic)
    if magic != GGUF_MAGIC:
        raise _error(path, "is not a GGUF model file (wrong magic bytes)",
                     hint="r1desk runs GGUF models, e.g. a *.Q4_K_M.gguf file")
    version = r.unpack("<I")
    if version not in SUPPORTED_VERSIONS:
        raise _error(path, f"GGUF version {version} is not supported (expected 2 or 3)")
    n_tensors = r.unpack("<Q")
    n_kv = r.unpack("<Q")
    if n_kv > MAX_KV or n_tensors > MAX_TENSORS:
        raise _Corrupt(f"{n_kv} metadata fields, {n_tensors} tensors (the limits are {MAX_KV} and "
                       f"{MAX_TENSORS})")
    r.need(n_kv * 12 + n_tensors * 24)      # the smallest possible field and tensor records
    fields: dict[str, Any] = {}
    types: dict[str, tuple[int, int | None]] = {}
    for _ in range(n_kv):
        raw_key = r.raw_string(MAX_KEY_BYTES, "a metadata key")
        key = raw_key.decode("utf-8", errors="replace")
        if key in fields:
            raise _Corrupt(f"the key {_describe_key(raw_key)} appears twice")
        vtype = r.unpack("<I")
        item_type = None
        if vtype == _T_ARRAY:
            item_type = r.unpack("<I")
            count = r.unpack("<Q")
            value = r.array(item_type, count, keep=keep_all or key in _KEEP_ARRAYS)
        else:
            value = r.value(vtype)
        fields[key] = value
        types[key] = (vtype, item_type)
    tensors = []
    names: set[str] = set()
    for _ in range(n_tensors):
        raw_name = r.raw_string(MAX_TENSOR_NAME_BYTES, "a tensor name")
        name = raw_name.decode("utf-8", errors="replace")
        if name in names:
            raise _Corrupt(f"the tensor {_describe_key(raw_name)} appears twice")
        names.add(name)
        n_dims = r.unpack("<I")
        if n_dims > MAX_DIMS:
            raise _Corrupt(f"tensor {_describe_key(raw_name)} has {n_dims} dimensions")
        shape = tuple(r.unpack("<Q") for _ in range(n_dims))
        ggml_type = r.unpack("<I")
        offset = r.unpack("<Q")
        tensors.append(TensorRecord(name, shape, ggml_type, offset))
    alignment = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    if (not isinstance(alignment, int) or isinstance(alignment, bool) or not 0 < alignment <= MAX_ALIGNMENT
            or alignment & (alignment - 1)):
        raise _Corrupt(f"alignment {alignment!r}")
    pos = r.pos
    data_offset = pos + (-pos) % alignment
    header = GGUFHeader(version, fields, types, tensors, data_offset, _data_size(tensors))
    if not header_only and header.data_size and data_offset + header.data_size > r.size:
        missing = data_offset + header.data_size - r.size
        raise _error(path, f"the GGUF file is truncated: its tensor data needs "
                     f"{data_offset + header.data_size} bytes but the file has {r.size} "
                     f"({missing} missing)",
                     hint="the download or copy was probably interrupted; get the file again")
    return header


def _type_sizes() -> dict[int, tuple[int, int]]:
    """ggml type -> (elements per block, bytes per block), from the gguf package."""
    from gguf.constants import GGML_QUANT_SIZES

    return {int(k): v for k, v in GGML_QUANT_SIZES.items()}


def _data_size(tensors: list[TensorRecord]) -> int | None:
    """End of the last tensor's data (relative), or None if a tensor type is unknown to us."""
    sizes = _type_sizes()
    end = 0
    for t in tensors:
        if t.ggml_type not in sizes:
            return None
        block, nbytes = sizes[t.ggml_type]
        elements = 1
        for d in t.shape:
            elements *= d
        end = max(end, t.offset + elements // block * nbytes)
    return end


def _type_name(ggml_type: int) -> str:
    from gguf.constants import GGMLQuantizationType

    try:
        return GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"TYPE_{ggml_type}"


def _quantization(fields: dict[str, Any], tensors: list[TensorRecord]) -> str | None:
    """general.file_type's name (Q4_K_M), or else the commonest type of the 2-D weights."""
    file_type = fields.get("general.file_type")
    if isinstance(file_type, int):
        from gguf.constants import LlamaFileType

        try:
            name = LlamaFileType(file_type).name
        except ValueError:
            name = ""
        if name and name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    matrices = Counter(t.ggml_type for t in tensors if len(t.shape) >= 2)
    if not matrices:
        return None
    return _type_name(matrices.most_common(1)[0][0])


def _parameter_count(tensors: list[TensorRecord]) -> int | None:
    total = 0
    for t in tensors:
        n = 1
        for d in t.shape:
            n *= d
        total += n
    return total or None


def _token_text(tokens: list[str] | None, token_id: Any) -> str | None:
    if tokens is None or not isinstance(token_id, int) or not 0 <= token_id < len(tokens):
        return None
    text = tokens[token_id]
    return text if len(text) <= MAX_SPECIAL_TOKEN_CHARS else None   # real ones: under 50 characters


def detect_r1(tokens: list[str] | None, chat_template: str | None) -> bool:
    """An R1-style model carries DeepSeek's User/Assistant markers and the <think> tag."""
    vocab = set(tokens or ())
    template = chat_template or ""
    return all(m in vocab or m in template for m in R1_MARKERS)


def _int_field(fields: dict[str, Any], key: str) -> int | None:
    value = fields.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


MAX_SHOWN_CHARS = 200      # metadata text shown (name, size label): longer is cut with "…"


def shown_text(value: Any, limit: int = MAX_SHOWN_CHARS) -> str | None:
    """Metadata text as it may be shown: control characters made visible, at most ``limit`` characters."""
    if not isinstance(value, str):
        return None
    text = printable(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _kv_bytes_per_token(f: dict[str, Any], arch: str) -> int | None:
    """f16 K and V for every layer at one position (as llama.cpp allocates them by default)."""
    layers = _int_field(f, f"{arch}.block_count")
    heads = _int_field(f, f"{arch}.attention.head_count")
    kv_heads = f.get(f"{arch}.attention.head_count_kv", heads)
    if isinstance(kv_heads, list):      # per-layer counts (some hybrid models)
        kv_heads = max((h for h in kv_heads if isinstance(h, int)), default=None)
    embd = _int_field(f, f"{arch}.embedding_length")
    key_len = _int_field(f, f"{arch}.attention.key_length") or (embd // heads if embd and heads else None)
    value_len = _int_field(f, f"{arch}.attention.value_length") or key_len
    if not (layers and isinstance(kv_heads, int) and kv_heads > 0 and key_len and value_len):
        return None
    return layers * kv_heads * (key_len + value_len) * 2


def _template_problem(template: Any, bos: str | None, eos: str | None) -> str | None:
    from r1desk.core.chat_template import MAX_TEMPLATE_CHARS, check_template

    if isinstance(template, Oversized):
        return f"it is {template.nbytes:,} bytes long (the limit is {MAX_TEMPLATE_CHARS:,} characters)"
    if not isinstance(template, str):
        return None
    return check_template(template, bos_token=bos or "", eos_token=eos or "")


def model_info_from_header(path: Path, header: GGUFHeader, size: int) -> ModelInfo:
    """Build ModelInfo from a parsed header; raises for architectures llama.cpp cannot chat with."""
    f = header.fields
    arch = f.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise _error(path, "the GGUF file names no model architecture (general.architecture)")
    if arch in EMBEDDING_ARCHITECTURES:
        raise _error(path, f"'{arch}' is an embedding model, not a chat model")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise _error(path, f"unsupported model architecture '{shown_text(arch, 60)}'",
                     hint="r1desk runs text-generation GGUFs such as llama, qwen2, qwen3, gemma, phi3")
    tokens = f.get("tokenizer.ggml.tokens")
    tokens = tokens if isinstance(tokens, list) else None
    raw_template = f.get("tokenizer.chat_template")
    template = raw_template if isinstance(raw_template, str) else None
    bos = _token_text(tokens, f.get("tokenizer.ggml.bos_token_id"))
    eos = _token_text(tokens, f.get("tokenizer.ggml.eos_token_id"))
    problem = _template_problem(raw_template, bos, eos)
    name = shown_text(f.get("general.name"))
    return ModelInfo(
        path=path.resolve(),
        name=name or shown_text(path.stem) or "model",
        architecture=arch,
        parameter_count=_parameter_count(header.tensors),
        quantization=_quantization(f, header.tensors),
        context_length=_int_field(f, f"{arch}.context_length"),
        chat_template=template,
        bos_token=bos,
        eos_token=eos,
        size_bytes=size,
        is_r1=detect_r1(tokens, template),
        block_count=_int_field(f, f"{arch}.block_count"),
        vocab_size=len(tokens) if tokens is not None else None,
        size_label=shown_text(f.get("general.size_label"), 40),
        chat_template_problem=problem,
        kv_bytes_per_token=_kv_bytes_per_token(f, arch),
        display_name=shown_text(model_name.display_name(name, f, path)) or "",
    )


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read what a GGUF model is from its header; raises ModelFileError for any unusable file."""
    path = Path(path).expanduser()
    header = read_gguf_header(path)
    return model_info_from_header(path, header, path.stat().st_size)


# --- sha256, computed on demand and cached by (resolved path, size, mtime) ---------------------

_SHA_CACHE_NAME = "sha256-cache.json"
_sha_lock = threading.Lock()


def sha_cache_path() -> Path:
    return paths.cache_dir() / _SHA_CACHE_NAME


def _load_sha_cache(cache_file: Path) -> dict[str, Any]:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The file's sha256 (hex). Hashing a 5 GB model takes a while, so the result is cached
    and recomputed only when the file's size or modification time changes."""
    path = Path(path).expanduser()
    size = _check_path(path)
    resolved = path.resolve()
    st = resolved.stat()
    key = str(resolved)
    stamp = {"size": size, "mtime_ns": st.st_mtime_ns}
    cache_file = sha_cache_path()
    with _sha_lock:
        entry = _load_sha_cache(cache_file).get(key)
        if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()):
            sha = entry.get("sha256")
            if isinstance(sha, str):
                return sha
    digest = hashlib.sha256()
    try:
        with open(resolved, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    except OSError as exc:
        raise _error(path, f"cannot read the file ({exc.strerror or exc})") from exc
    sha = digest.hexdigest()
    with _sha_lock:
        cache = _load_sha_cache(cache_file)
        cache[key] = {**stamp, "sha256": sha}
        try:
            atomic_write_text(cache_file, json.dumps(cache, indent=1, sort_keys=True))
        except OSError as exc:  # a read-only cache only costs speed
            log.warning("could not write the sha256 cache %s: %s", cache_file, exc)
    return sha
