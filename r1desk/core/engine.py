"""The inference engine: one GGUF model in llama.cpp, streamed token by token.

``Engine.load`` validates the file with ``read_model_info`` first, so a corrupt or unsupported
file is rejected with a plain message and never reaches llama.cpp's C code. ``generate`` runs
llama.cpp's own token loop and checks a ``threading.Event`` between tokens, so Stop takes effect
within one token. Text pieces go through an incremental UTF-8 decoder, so a character split
across two tokens (emoji, CJK) is never broken. llama.cpp's console chatter is captured into the
``r1desk.engine`` logger at debug level instead of the terminal.

One model, one worker (STYLE.md): a llama.cpp context serves one generation at a time; a lock
makes that hold even if two threads call in.
"""
from __future__ import annotations

import codecs
import ctypes
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from r1desk.core.backend import ModelDescription, ModelIdentity
from r1desk.core.gguf_info import ModelInfo, file_sha256, read_model_info
from r1desk.core.prompts import BuiltPrompt, PromptRequest, build_prompt
from r1desk.core.hardware import detect_gpus
from r1desk.errors import ContextOverflowError, ModelLoadError, SettingsError

log = logging.getLogger("r1desk.engine")

FINISH_REASONS = ("stop", "length", "cancelled", "error")


@dataclass
class LoadOptions:
    n_ctx: int = 4096
    n_threads: int | None = None      # None: llama.cpp's default (physical cores)
    gpu_layers: str | int = "none"    # none | all | auto | N
    seed: int = -1                    # -1: a fresh random seed per generation


@dataclass
class GenParams:
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 2048
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    top_k: int = 40                   # llama.cpp's defaults, as LM Studio and Ollama use them
    min_p: float = 0.05
    repeat_penalty: float = 1.0


GenFinish = Literal["stop", "length", "cancelled", "error"]   # why a generation ended


@dataclass
class GenStats:
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float | None
    decode_tokens_per_s: float | None
    total_s: float
    finish_reason: GenFinish

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "time_to_first_token_s": self.time_to_first_token_s,
            "decode_tokens_per_s": self.decode_tokens_per_s, "total_s": self.total_s,
            "finish_reason": self.finish_reason,
        }


# --- llama.cpp's log, routed to our logger -------------------------------------------------------

_native_log: deque[tuple[int, str]] = deque(maxlen=4000)
_native_callback: Any = None           # keeps the ctypes callback alive
_GGML_LOG_ERROR = 4                    # ggml.h today (older builds used 3: text is checked too)
_GGML_LOG_CONT = 5


def _llama() -> Any:
    """Import llama_cpp on first use (it loads a shared library) and take over its log."""
    global _native_callback
    import llama_cpp

    if _native_callback is None:
        def _on_native_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            _native_log.append((level, text.decode("utf-8", errors="replace")))

        _native_callback = llama_cpp.llama_log_callback(_on_native_log)   # the ctypes callback, kept alive here
        llama_cpp.llama_log_set(_native_callback, ctypes.c_void_p(0))
    return llama_cpp


def _flush_native_log() -> list[str]:
    """Move captured llama.cpp output into the debug log; returns its error lines."""
    lines: list[tuple[bool, str]] = []
    current, current_error = "", False
    while _native_log:
        level, text = _native_log.popleft()
        if level != _GGML_LOG_CONT:
            current_error = level == _GGML_LOG_ERROR
        current += text
        while "\n" in current:
            line, current = current.split("\n", 1)
            lines.append((current_error, line))
    if current:
        lines.append((current_error, current))
    errors = []
    for is_error, line in lines:
        line = line.strip()
        if not line:
            continue
        log.debug("llama.cpp: %s", line)
        if is_error or "error" in line.lower():
            errors.append(line)
    return errors


def _load_error_detail(errors: list[str], fallback: str) -> str:
    """The most telling llama.cpp error line, without its C function-name prefix."""
    for line in errors:
        if "error loading model:" in line:
            return line.split("error loading model:", 1)[1].strip()
    return errors[-1].split(": ", 1)[-1] if errors else fallback


# --- GPU offload ----------------------------------------------------------------------------------

def _free_vram_bytes() -> int | None:
    """Free memory of the first NVIDIA GPU, if nvidia-smi can tell; None otherwise."""
    gpus = detect_gpus()
    return gpus[0].free_bytes if gpus else None


def resolve_gpu_layers(gpu_layers: str | int, info: ModelInfo, *,
                       offload_supported: bool | None = None,
                       free_vram: int | None = None) -> int:
    """none/all/auto/N -> llama.cpp's n_gpu_layers (0, -1 = all, or a count).

    "auto" offloads every layer that fits in the free VRAM (keeping 1 GiB for the context and
    other programs), all of them when the free VRAM is unknown, none without a GPU build.
    """
    value = gpu_layers.strip().lower() if isinstance(gpu_layers, str) else gpu_layers
    if isinstance(value, str) and value.lstrip("-").isdecimal():
        value = int(value)
    if value == "none":
        return 0
    if value == "all":
        return -1
    if isinstance(value, int) and not isinstance(value, bool):
        if value < -1:
            raise SettingsError(f"gpu_layers must be none, all, auto or a layer count >= 0, not {value}",
                                key="gpu_layers", value=gpu_layers)
        return value
    if value != "auto":
        raise SettingsError(f"gpu_layers must be none, all, auto or a layer count, not {gpu_layers!r}",
                            key="gpu_layers", value=gpu_layers)
    if offload_supported is None:
        offload_supported = bool(_llama().llama_supports_gpu_offload())
    if not offload_supported:
        return 0
    if free_vram is None:
        free_vram = _free_vram_bytes()
    layers = info.block_count
    if free_vram is None or not layers:
        return -1
    per_layer = info.size_bytes / (layers + 1)     # +1: embeddings and output head
    fit = int((free_vram - (1 << 30)) // per_layer)
    return -1 if fit >= layers + 1 else max(0, fit)


# --- the engine -----------------------------------------------------------------------------------

def check_memory(info: ModelInfo, n_ctx: int, hw: Any = None) -> None:
    """Refuse a context size this machine cannot hold (hardware.fit_model says "won't fit") before
    llama.cpp tries to allocate it and the process is killed for memory."""
    from r1desk.core import hardware

    hw = hw or hardware.detect()
    fit, need = hardware.fit_model(info, hw, n_ctx)
    if fit == hardware.WONT_FIT:
        have = max(hw.available_ram, hw.gpu_free + hw.available_ram if hw.gpu_free else 0)
        raise ModelLoadError(
            f"{info.path.name} with a {n_ctx:,}-token context needs about {need / 2**30:.1f} GiB of memory, "
            f"but this machine has {have / 2**30:.1f} GiB available",
            hint=f"use a smaller context size (the model was trained with "
                 f"{info.context_length or 'an unknown number of'} tokens; 8192 is a common choice)")


class Engine:
    """One loaded model. Load, generate, unload; one generation at a time.

    The local implementation of ``core.backend.InferenceBackend``: it renders prompts with the GGUF's
    own chat template (``build_prompt``) and streams tokens from llama.cpp (``stream``)."""

    kind = "llama.cpp"

    def __init__(self) -> None:
        self.info: ModelInfo | None = None
        self.options: LoadOptions | None = None
        self.n_gpu_layers: int = 0
        self._llm: Any = None
        # A plain Lock, not an RLock: a Generation dropped on another thread must be able to
        # release it when its iterator is finalised there.
        self._lock = threading.Lock()
        self._owner: int | None = None    # thread id holding the lock (re-entry from it is allowed)
        self._generating = False
        self._pieces: dict[int, bytes] = {}
        self._seeds = random.Random()
        self._digests: dict[str, str] = {}

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """The engine lock; the thread already holding it may re-enter (e.g. count_tokens while
        it iterates a Generation) instead of deadlocking."""
        me = threading.get_ident()
        if self._owner == me:
            yield
            return
        with self._lock:
            self._owner = me
            try:
                yield
            finally:
                self._owner = None

    def _check_not_generating(self) -> None:
        if self._generating:
            raise RuntimeError("cannot load or unload a model while a generation is running")

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def n_ctx(self) -> int:
        n: int = self._require().n_ctx()   # llama_cpp ships no types
        return n

    def load(self, path: str | os.PathLike[str], options: LoadOptions | None = None) -> ModelInfo:
        """Validate and load a GGUF (replacing any model already loaded)."""
        options = options or LoadOptions()
        info = read_model_info(path)               # bad files never reach llama.cpp
        if options.n_ctx < 16:
            raise SettingsError(f"context size must be at least 16 tokens, not {options.n_ctx}",
                                key="n_ctx", value=options.n_ctx)
        check_memory(info, options.n_ctx)
        n_gpu_layers = resolve_gpu_layers(options.gpu_layers, info)
        llama_cpp = _llama()
        with self._guard():
            self._check_not_generating()
            self._unload_locked()
            _flush_native_log()
            started = time.perf_counter()
            try:
                llm = llama_cpp.Llama(
                    model_path=str(info.path), n_ctx=options.n_ctx, n_threads=options.n_threads,
                    n_threads_batch=options.n_threads, n_gpu_layers=n_gpu_layers,
                    seed=options.seed if options.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                detail = _load_error_detail(_flush_native_log(), str(exc))
                raise ModelLoadError(f"llama.cpp could not load {info.path.name}: {detail}",
                                     hint="the file may need a newer llama.cpp, or more memory") from exc
            _flush_native_log()
            self._llm = llm
            self.info = info
            self.options = options
            self.n_gpu_layers = n_gpu_layers
            self._pieces = {}
            self._seeds = random.Random(options.seed if options.seed >= 0 else None)
            if str(info.path) not in self._digests:
                self._hash_in_background(info.path)
            log.info("loaded %s (%s, %s) in %.2fs, n_ctx=%d, gpu_layers=%d", info.name,
                     info.architecture, info.quantization, time.perf_counter() - started,
                     options.n_ctx, n_gpu_layers)
        return info

    def unload(self) -> None:
        """Free the model and its context (memory is returned now, not at garbage collection)."""
        with self._guard():
            self._check_not_generating()
            self._unload_locked()

    def _unload_locked(self) -> None:
        llm, self._llm = self._llm, None
        self.info = None
        self._pieces = {}
        if llm is not None:
            llm.close()
            del llm
            _flush_native_log()
            log.info("model unloaded")

    def _require(self) -> Any:
        if self._llm is None:
            raise RuntimeError("no model is loaded")
        return self._llm

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a fully rendered prompt: special tokens parsed, BOS added once.

        Templates such as R1's write the BOS token themselves; it is added here only when the
        model asks for one (tokenizer.ggml.add_bos_token) and the text does not already start
        with it.
        """
        llama_cpp = _llama()
        with self._guard():
            llm = self._require()
            tokens: list[int] = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            vocab = llama_cpp.llama_model_get_vocab(llm.model)
            bos = llama_cpp.llama_vocab_bos(vocab)
            if llama_cpp.llama_vocab_get_add_bos(vocab) and bos >= 0 and tokens[:1] != [bos]:
                tokens.insert(0, bos)
            return tokens

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    # -- core.backend.InferenceBackend ---------------------------------------------------------------
    def describe(self) -> ModelDescription:
        """The loaded file as the audit log records it: (llama.cpp, path, sha256)."""
        info = self.info
        if info is None:
            raise RuntimeError("no model is loaded")
        details = {k: v for k, v in info.to_dict().items() if k != "chat_template"}
        details["general_name"] = info.name     # the file's own general.name ("name" is the shown name)
        return ModelDescription(ModelIdentity(self.kind, str(info.path), self._digests.get(str(info.path))),
                                info.shown_name, info.is_r1, info.context_length, info.quantization, details)

    def _hash_in_background(self, path: Path) -> None:
        """The file's sha256 for the audit log, computed once per file (cached on disk by size and mtime)
        on a low-priority thread, so a multi-GB model does not delay the first turn; turns started before
        it is known record no digest."""
        def run() -> None:
            if hasattr(os, "setpriority"):
                try:
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
                except OSError:
                    pass
            try:
                self._digests[str(path)] = file_sha256(path)
            except OSError as exc:
                log.warning("could not hash %s: %s", path, exc)

        threading.Thread(target=run, name="r1desk-model-hash", daemon=True).start()

    def build_prompt(self, request: PromptRequest, *, max_tokens: int) -> BuiltPrompt:
        """The request rendered with the model's chat template, older turns dropped to fit the context."""
        info = self.info
        if info is None:
            raise RuntimeError("no model is loaded")
        return build_prompt(info, request, count_tokens=self.count_tokens, n_ctx=self.n_ctx, max_tokens=max_tokens)

    def stream(self, prompt: BuiltPrompt, params: GenParams, cancel: threading.Event) -> Generation:
        return self.generate(prompt.text, params, cancel)

    def piece(self, token: int) -> bytes:
        """The bytes of one token (any length; llama-cpp-python's helper caps them at 32)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        llama_cpp = _llama()
        vocab = llama_cpp.llama_model_get_vocab(self._require().model)
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
            if n >= 0:
                break
            size = -n
        data = buf.raw[:n]
        self._pieces[token] = data
        return data

    def generate(self, prompt: str, params: GenParams | None = None,
                 cancel: threading.Event | None = None) -> Generation:
        """Start a generation; raises ContextOverflowError before decoding if the prompt is too long.

        Iterate the result for text pieces; its ``stats`` are set when the iteration ends.
        """
        params = params or GenParams()
        if params.max_tokens < 1:
            raise SettingsError(f"max_tokens must be at least 1, not {params.max_tokens}",
                                key="max_tokens", value=params.max_tokens)
        tokens = self.tokenize(prompt)
        n_ctx = self.n_ctx
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(tokens)} tokens but the context window holds {n_ctx} "
                f"(with room for at least one token of reply)",
                hint="shorten the prompt or load the model with a larger context size")
        return Generation(self, tokens, params, cancel or threading.Event())


# Prompt reading is reported after every PROMPT_BATCH tokens, for prompts of at least PROMPT_PROGRESS_MIN tokens.
PROMPT_BATCH = 256
PROMPT_PROGRESS_MIN = 64


class Generation:
    """One streamed reply: iterate for text pieces; ``stats`` is set when the iteration ends.

    While the prompt is read, the iteration yields empty pieces and ``prompt_progress`` says how far it is."""

    def __init__(self, engine: Engine, tokens: list[int], params: GenParams,
                 cancel: threading.Event) -> None:
        self.engine = engine
        self.prompt_tokens = tokens
        self.params = params
        self.cancel = cancel
        self._llm = engine._llm            # the model the prompt was tokenised for
        self.stats: GenStats | None = None
        self.prompt_progress: tuple[int, int] | None = None   # (prompt tokens read, prompt tokens) while reading
        self.text = ""                   # everything yielded so far
        self.tokens: list[int] = []      # completion token ids (without the end-of-generation one)
        # A weak reference: the consumer's loop owns the iterator, so dropping it (break, garbage
        # collection) still ends the generation; close() can end it while the loop still holds it.
        self._iterator: weakref.ref[Generator[str, None, None]] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._iterator is not None:
            raise RuntimeError("a Generation can be iterated only once")
        iterator = self._run()
        self._iterator = weakref.ref(iterator)
        return iterator

    def _run(self) -> Generator[str, None, None]:
        engine, params = self.engine, self.params
        llama_cpp = _llama()
        with engine._guard():
            llm = engine._require()
            if llm is not self._llm:
                raise RuntimeError("the model was replaced after this generation was prepared")
            stops = [s for s in params.stop if s]
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            pending = ""                 # decoded text held back while it may start a stop string
            completion = 0
            stop_hit = False
            finish: GenFinish = "cancelled"
            t0 = time.perf_counter()
            t_first: float | None = None
            t_last: float | None = None
            limit = min(params.max_tokens, llm.n_ctx() - len(self.prompt_tokens))
            seed = params.seed if params.seed is not None else engine._seeds.randrange(2**31)
            llm.set_seed(seed)
            if params.seed is not None:
                # A fixed seed must give the same reply every time: re-evaluate the whole prompt
                # instead of reusing the cached prefix (batch sizes change the float rounding).
                llm.reset()
            tokens_iter = llm.generate(
                self.prompt_tokens, top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
                temp=params.temperature, repeat_penalty=params.repeat_penalty, reset=True)
            vocab = llama_cpp.llama_model_get_vocab(llm.model)
            engine._generating = True
            try:
                # Read the prompt here, batch by batch, so the reader can show "n/N tokens" (an empty piece after
                # each batch; prompt_progress says how far); llm.generate then finds it in the KV cache.
                yield from self._read_prompt(llm)
                while True:
                    if self.cancel.is_set():
                        finish = "cancelled"
                        break
                    if completion >= limit:
                        finish = "length"
                        break
                    token = next(tokens_iter)
                    t_last = time.perf_counter()
                    if t_first is None:
                        t_first = t_last
                    if llama_cpp.llama_vocab_is_eog(vocab, token):
                        finish = "stop"
                        break
                    completion += 1
                    self.tokens.append(token)
                    pending += decoder.decode(engine.piece(token))
                    out, pending, hit = _split_stop(pending, stops)
                    if out:
                        self.text += out
                        yield out
                    if hit:
                        finish, stop_hit = "stop", True
                        break
                if not stop_hit:         # what was held back (or half a character) is text too
                    pending += decoder.decode(b"", final=True)
                    if pending:
                        self.text += pending
                        yield pending
            except GeneratorExit:
                finish = "cancelled"     # the consumer stopped iterating
                raise
            except Exception:
                finish = "error"
                raise
            finally:
                engine._generating = False
                tokens_iter.close()
                end = time.perf_counter()
                rate = None
                if t_first is not None and t_last is not None and completion >= 2 and t_last > t_first:
                    rate = (completion - 1) / (t_last - t_first)
                self.stats = GenStats(
                    prompt_tokens=len(self.prompt_tokens), completion_tokens=completion,
                    time_to_first_token_s=(t_first - t0) if t_first is not None else None,
                    decode_tokens_per_s=rate, total_s=end - t0, finish_reason=finish)
                errors = _flush_native_log()
                if errors:
                    log.warning("llama.cpp reported: %s", errors[-1])
                log.debug("generation finished: %s", self.stats)

    def _read_prompt(self, llm: Any) -> Generator[str, None, None]:
        """Evaluate all but the prompt's last token in PROMPT_BATCH-token batches (after the prefix the KV
        cache already holds), yielding "" after each so the caller can report progress between batches.

        llama-cpp-python has no progress callback; its ``generate`` would evaluate the same tokens in
        ``n_batch`` batches in one blocking call. Here the batches are at most PROMPT_BATCH tokens and
        ``generate`` is left only the last token (its prefix match reuses what was read). The overhead of
        the smaller batches is measured in bench/RESULTS.md ("Reading your message" progress).
        """
        prompt = self.prompt_tokens
        cached = int(llm.n_tokens)
        have = list(llm.input_ids[:cached]) if cached else []
        prefix = 0
        for a, b in zip(have, prompt):
            if a != b:
                break
            prefix += 1
        prefix = min(prefix, len(prompt) - 1)
        todo = len(prompt) - 1 - prefix
        if todo < PROMPT_PROGRESS_MIN:
            return                       # short: generate reads it at once, nothing to show
        llm.n_tokens = prefix            # eval() drops the KV cache past n_tokens before it decodes
        batch = max(1, min(PROMPT_BATCH, int(llm.n_batch)))
        self.prompt_progress = (prefix, len(prompt))
        yield ""
        for start in range(prefix, len(prompt) - 1, batch):
            if self.cancel.is_set():
                return
            end = min(start + batch, len(prompt) - 1)
            llm.eval(prompt[start:end])
            self.prompt_progress = (end, len(prompt))
            yield ""

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    def close(self) -> None:
        """End the generation now (as "cancelled" if it was still running) and free the engine."""
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None:
            iterator.close()


def _split_stop(text: str, stops: list[str]) -> tuple[str, str, bool]:
    """(text safe to emit, text held back, stop string reached) for streamed stop strings."""
    if not stops:
        return text, "", False
    first = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if first >= 0:
        return text[:first], "", True
    hold = 0
    for s in stops:                      # longest tail of text that could start a stop string
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return (text[:-hold], text[-hold:], False) if hold else (text, "", False)

