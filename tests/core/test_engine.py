"""The engine on real llama.cpp with the real test models (SmolLM2 and the tiny R1 model)."""
from __future__ import annotations

import gc
import threading
from pathlib import Path

import psutil
import pytest

from r1desk.core.engine import Engine, GenParams, LoadOptions, resolve_gpu_layers
from r1desk.core.gguf_info import read_model_info
from r1desk.errors import ContextOverflowError, ModelFileError, ModelLoadError, SettingsError
from tests.support import tiny_models

SMOL_PROMPT = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
               "<|im_start|>assistant\n")
SMOL_STORY = ("<|im_start|>user\nWrite a long story about a dragon who learns to bake bread."
              "<|im_end|>\n<|im_start|>assistant\n")
R1_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n"

pytestmark = pytest.mark.slow


def _utf8_complete(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_smollm2_answers_and_streams_with_stats(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_PROMPT, GenParams(temperature=0.0, max_tokens=64))
    assert gen.stats is None                      # set only when the iteration ends
    pieces = list(gen)
    text = "".join(pieces)
    assert "Paris" in text
    assert len(pieces) >= 3 and text == gen.text
    stats = gen.stats
    assert stats is not None and stats.finish_reason == "stop"
    assert stats.prompt_tokens == smollm2_engine.count_tokens(SMOL_PROMPT)
    assert stats.completion_tokens == len(gen.tokens) >= 3
    assert stats.time_to_first_token_s is not None and 0 < stats.time_to_first_token_s <= stats.total_s
    assert stats.decode_tokens_per_s is not None and stats.decode_tokens_per_s > 0


def test_tiny_r1_generates_tokens(tiny_r1_engine: Engine) -> None:
    assert tiny_r1_engine.info is not None and tiny_r1_engine.info.is_r1
    gen = tiny_r1_engine.generate(R1_PROMPT, GenParams(max_tokens=40, seed=7))
    pieces = list(gen)
    assert pieces and "".join(pieces).strip()
    assert gen.stats.finish_reason in ("length", "stop")   # random weights may sample the EOS token
    assert gen.stats.completion_tokens == len(gen.tokens) <= 40
    assert gen.stats.finish_reason == "stop" or gen.stats.completion_tokens == 40
    assert gen.stats.decode_tokens_per_s > 0


def test_r1_prompt_tokenises_special_tokens_and_one_bos(tiny_r1_engine: Engine) -> None:
    tokens = tiny_r1_engine.tokenize(R1_PROMPT)
    # <｜begin▁of▁sentence｜> <｜User｜> ... <｜Assistant｜> <think> \n : single tokens, BOS once
    assert tokens[0] == 151646 and tokens.count(151646) == 1
    assert 151644 in tokens and 151645 in tokens and tokens[-2:] == [151648, 198]
    # Without the BOS text, the model's add_bos_token adds it.
    assert tiny_r1_engine.tokenize("<｜User｜>Hi")[:2] == [151646, 151644]


def test_same_seed_same_text(tiny_r1_engine: Engine) -> None:
    texts = ["".join(tiny_r1_engine.generate(R1_PROMPT, GenParams(max_tokens=24, seed=123)))
             for _ in range(2)]
    assert texts[0] == texts[1]


def test_multibyte_characters_split_across_tokens_are_never_broken(smollm2_engine: Engine) -> None:
    prompt = ("<|im_start|>user\nRepeat exactly: Größe 😀 日本語 😀 🎉<|im_end|>\n"
              "<|im_start|>assistant\n")
    gen = smollm2_engine.generate(prompt, GenParams(temperature=0.0, max_tokens=30))
    pieces = list(gen)
    token_bytes = [smollm2_engine.piece(t) for t in gen.tokens]
    assert any(not _utf8_complete(b) for b in token_bytes), "no character was split: test is moot"
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == b"".join(token_bytes).decode("utf-8")


@pytest.mark.parametrize("n", [1, 5])
def test_cancel_takes_effect_within_one_token(smollm2_engine: Engine, n: int) -> None:
    cancel = threading.Event()
    gen = smollm2_engine.generate(SMOL_STORY, GenParams(max_tokens=200, seed=1), cancel)
    received = 0
    for _ in gen:
        received += 1
        if received == n:
            cancel.set()
    assert received == n
    assert gen.stats.finish_reason == "cancelled"
    assert gen.stats.completion_tokens in (n, n + 1)


def test_cancel_before_start_generates_nothing(smollm2_engine: Engine) -> None:
    cancel = threading.Event()
    cancel.set()
    gen = smollm2_engine.generate(SMOL_STORY, GenParams(max_tokens=50), cancel)
    assert list(gen) == []
    assert gen.stats.completion_tokens == 0 and gen.stats.finish_reason == "cancelled"


def test_leaving_the_loop_early_counts_as_cancelled_and_frees_the_engine(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_STORY, GenParams(max_tokens=100, seed=2))
    for _ in gen:
        break
    gc.collect()
    assert gen.stats.finish_reason == "cancelled"
    # The engine is usable again at once (its lock was released).
    assert "Paris" in "".join(smollm2_engine.generate(SMOL_PROMPT, GenParams(temperature=0.0)))


def test_closing_the_generation_ends_it_and_frees_the_engine(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_STORY, GenParams(max_tokens=100, seed=2))
    it = iter(gen)
    next(it)                                       # the engine lock is held; `it` stays referenced
    gen.close()
    assert gen.stats.finish_reason == "cancelled"
    done = threading.Event()
    worker = threading.Thread(target=lambda: (list(smollm2_engine.generate(SMOL_PROMPT, GenParams(max_tokens=3))),
                                              done.set()))
    worker.start()
    worker.join(timeout=60)
    assert done.is_set()
    assert list(it) == []
    gen.close()                                    # closing twice is harmless


def test_max_tokens_gives_finish_reason_length(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_STORY, GenParams(max_tokens=8, seed=3))
    list(gen)
    assert gen.stats.completion_tokens == 8 and gen.stats.finish_reason == "length"


def test_stop_strings_end_the_reply_before_the_stop_text(smollm2_engine: Engine) -> None:
    full = "".join(smollm2_engine.generate(SMOL_PROMPT, GenParams(temperature=0.0)))
    assert "Paris" in full
    gen = smollm2_engine.generate(SMOL_PROMPT, GenParams(temperature=0.0, stop=["Paris"]))
    text = "".join(gen)
    assert text == full[: full.index("Paris")]
    assert gen.stats.finish_reason == "stop"


def test_generation_can_be_iterated_only_once(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_PROMPT, GenParams(max_tokens=2))
    list(gen)
    with pytest.raises(RuntimeError):
        iter(gen)


def test_prompt_longer_than_context_is_refused_before_decoding(tiny_r1_path: Path) -> None:
    engine = Engine()
    engine.load(tiny_r1_path, LoadOptions(n_ctx=256))
    try:
        n_ctx = engine.n_ctx                       # llama.cpp may round the size up
        prompt = "<｜User｜>" + "word " * (n_ctx + 50) + "<｜Assistant｜>"
        n = engine.count_tokens(prompt)
        with pytest.raises(ContextOverflowError) as excinfo:
            engine.generate(prompt, GenParams(max_tokens=10))
        assert f"the prompt is {n} tokens but the context window holds {n_ctx}" in str(excinfo.value)
        # A prompt that fits but leaves little room stops at the end of the context.
        short = "<｜User｜>" + "word " * (n_ctx - 15) + "<｜Assistant｜>"
        room = n_ctx - engine.count_tokens(short)
        assert 0 < room < 20
        gen = engine.generate(short, GenParams(max_tokens=100, seed=1))
        list(gen)
        assert gen.stats.completion_tokens == room and gen.stats.finish_reason == "length"
    finally:
        engine.unload()


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "wrong_magic", "truncated",
                                  "unsupported_arch"])
def test_bad_files_never_reach_llama_cpp(bad_model_files: dict[str, Path], case: str) -> None:
    engine = Engine()
    with pytest.raises(ModelFileError):
        engine.load(bad_model_files[case])
    assert not engine.loaded and engine.info is None


def test_llama_cpp_refusal_is_a_model_load_error(tmp_path: Path) -> None:
    """A well-formed GGUF of a supported architecture that lacks the tensors llama.cpp needs."""
    path = tiny_models.write_minimal_gguf(tmp_path / "hollow-qwen2.gguf", "qwen2")
    read_model_info(path)                          # passes our header checks
    engine = Engine()
    with pytest.raises(ModelLoadError) as excinfo:
        engine.load(path)
    message = str(excinfo.value)
    assert message.startswith("llama.cpp could not load hollow-qwen2.gguf: ")
    assert "qwen2.embedding_length" in message      # llama.cpp's own reason, from its log
    assert "\n" not in message
    assert not engine.loaded


def test_unload_frees_and_generation_needs_a_model(tiny_r1_path: Path) -> None:
    engine = Engine()
    info = engine.load(tiny_r1_path, LoadOptions(n_ctx=256))
    assert engine.loaded and engine.info == info and engine.n_ctx == 256
    engine.unload()
    assert not engine.loaded and engine.info is None
    with pytest.raises(RuntimeError, match="no model is loaded"):
        engine.generate(R1_PROMPT)
    engine.unload()                                # unloading twice is harmless


def test_loading_another_model_replaces_the_first(tiny_r1_path: Path, smollm2_path: Path) -> None:
    engine = Engine()
    engine.load(tiny_r1_path, LoadOptions(n_ctx=256))
    engine.load(smollm2_path, LoadOptions(n_ctx=256))
    try:
        assert engine.info.architecture == "llama"
        assert "Paris" in "".join(engine.generate(SMOL_PROMPT, GenParams(temperature=0.0)))
    finally:
        engine.unload()


def test_repeated_load_unload_keeps_memory_bounded(tiny_r1_path: Path) -> None:
    process = psutil.Process()
    engine = Engine()

    def cycle() -> None:
        engine.load(tiny_r1_path, LoadOptions(n_ctx=512))
        list(engine.generate(R1_PROMPT, GenParams(max_tokens=4, seed=1)))
        engine.unload()
        gc.collect()

    for _ in range(3):                             # warm-up: allocator pools, caches
        cycle()
    before = process.memory_info().rss
    for _ in range(20):
        cycle()
    growth = process.memory_info().rss - before
    assert growth < 50 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB over 20 load/unload cycles"


@pytest.mark.parametrize("value, expected", [("none", 0), ("all", -1), (0, 0), (12, 12), ("7", 7),
                                             (" ALL ", -1), (-1, -1)])
def test_gpu_layers_explicit(tiny_r1_path: Path, value: str | int, expected: int) -> None:
    info = read_model_info(tiny_r1_path)
    assert resolve_gpu_layers(value, info) == expected


def test_gpu_layers_auto(tiny_r1_path: Path) -> None:
    info = read_model_info(tiny_r1_path)             # 2 layers, ~25 MB
    assert resolve_gpu_layers("auto", info, offload_supported=False) == 0
    assert resolve_gpu_layers("auto", info, offload_supported=True, free_vram=None) == -1
    assert resolve_gpu_layers("auto", info, offload_supported=True, free_vram=8 << 30) == -1
    big = type(info)(**{**info.__dict__, "size_bytes": 29 << 30, "block_count": 28})
    partial = resolve_gpu_layers("auto", big, offload_supported=True, free_vram=9 << 30)
    assert 0 < partial < 28
    assert resolve_gpu_layers("auto", big, offload_supported=True, free_vram=512 << 20) == 0


def test_gpu_layers_auto_asks_nvidia_smi_for_the_first_gpu(tiny_r1_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from r1desk.core import engine as engine_mod
    from r1desk.core.hardware import GPU

    big = type(read_model_info(tiny_r1_path))(**{**read_model_info(tiny_r1_path).__dict__,
                                                  "size_bytes": 29 << 30, "block_count": 28})
    monkeypatch.setattr(engine_mod, "detect_gpus", lambda: (GPU("A", 80 << 30, 512 << 20),
                                                            GPU("B", 80 << 30, 80 << 30)))
    assert resolve_gpu_layers("auto", big, offload_supported=True) == 0
    monkeypatch.setattr(engine_mod, "detect_gpus", lambda: ())
    assert resolve_gpu_layers("auto", big, offload_supported=True) == -1    # unknown: all


@pytest.mark.parametrize("value", ["most", -2, "1.5", "", "²"])
def test_gpu_layers_invalid(tiny_r1_path: Path, value: str | int) -> None:
    with pytest.raises(SettingsError, match="gpu_layers must be"):
        resolve_gpu_layers(value, read_model_info(tiny_r1_path))


def test_invalid_generation_settings(smollm2_engine: Engine) -> None:
    with pytest.raises(SettingsError, match="max_tokens"):
        smollm2_engine.generate(SMOL_PROMPT, GenParams(max_tokens=0))


def test_llama_cpp_chatter_goes_to_the_debug_log(tiny_r1_path: Path, caplog: pytest.LogCaptureFixture,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level("DEBUG", logger="r1desk.engine")
    engine = Engine()
    engine.load(tiny_r1_path, LoadOptions(n_ctx=128))
    engine.unload()
    out, err = capfd.readouterr()
    assert "llama_" not in out + err                 # nothing printed to the terminal
    assert any(r.getMessage().startswith("llama.cpp: ") for r in caplog.records)


def test_counting_tokens_while_iterating_does_not_deadlock(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_PROMPT, GenParams(temperature=0.0, max_tokens=5))
    counts = [smollm2_engine.count_tokens(piece) for piece in gen]
    assert len(counts) >= 1 and gen.stats.finish_reason in ("stop", "length")


def test_unloading_during_a_generation_is_refused(tiny_r1_path: Path) -> None:
    engine = Engine()
    engine.load(tiny_r1_path, LoadOptions(n_ctx=256))
    gen = engine.generate(R1_PROMPT, GenParams(max_tokens=20, seed=1))
    it = iter(gen)
    next(it)
    with pytest.raises(RuntimeError, match="while a generation is running"):
        engine.unload()
    it.close()
    assert gen.stats.finish_reason == "cancelled"
    engine.unload()
    assert not engine.loaded


def test_a_generation_finished_on_another_thread_releases_the_engine(smollm2_engine: Engine) -> None:
    gen = smollm2_engine.generate(SMOL_STORY, GenParams(max_tokens=50, seed=4))
    it = iter(gen)
    next(it)                                       # the lock is now held by this thread
    worker = threading.Thread(target=it.close)     # the iterator is finalised elsewhere
    worker.start()
    worker.join()
    assert gen.stats.finish_reason == "cancelled"
    done = threading.Event()

    def other() -> None:
        list(smollm2_engine.generate(SMOL_PROMPT, GenParams(max_tokens=3)))
        done.set()

    t = threading.Thread(target=other)
    t.start()
    t.join(timeout=60)
    assert done.is_set()


def test_fixed_seed_is_reproducible_across_a_cached_prompt(smollm2_engine):
    from r1desk.core.engine import GenParams

    prompt = "<|im_start|>user\nName three animals.<|im_end|>\n<|im_start|>assistant\n"
    params = GenParams(max_tokens=24, seed=42)
    first = "".join(smollm2_engine.generate(prompt, params))
    "".join(smollm2_engine.generate(prompt + "Sure", GenParams(max_tokens=4, seed=1)))  # shares the prefix
    again = "".join(smollm2_engine.generate(prompt, params))
    assert first == again


def test_a_long_prompt_is_read_in_batches_with_progress(tiny_r1_engine):
    """Issue 14 item 15: while the model reads a long prompt, the stream says how far (n/N tokens)."""
    from r1desk.core import engine as engine_module
    from r1desk.core.engine import GenParams

    prompt = "The quick brown fox jumps over the lazy dog. " * 80
    total = len(tiny_r1_engine.tokenize(prompt))
    assert total > engine_module.PROMPT_BATCH * 2
    params = GenParams(max_tokens=8, temperature=0.0, seed=3)
    gen = tiny_r1_engine.generate(prompt, params)
    seen, text = [], []
    for piece in gen:
        if not piece:
            assert not text, "progress only before the reply"
            seen.append(gen.prompt_progress)
        else:
            text.append(piece)
    assert seen[0] == (0, total) and seen[-1] == (total - 1, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= total // engine_module.PROMPT_BATCH
    assert gen.stats.prompt_tokens == total and gen.stats.finish_reason in ("length", "stop")
    # the same reply as reading the prompt in one go (the KV cache holds what was read)
    again = tiny_r1_engine.generate(prompt, params)
    assert "".join(p for p in again if p) == "".join(text)


def test_a_short_prompt_has_no_progress_pieces(tiny_r1_engine):
    from r1desk.core.engine import GenParams

    gen = tiny_r1_engine.generate("Hi", GenParams(max_tokens=4, seed=1))
    assert all(piece for piece in gen) and gen.prompt_progress is None


def test_stop_while_reading_the_prompt_ends_within_a_batch(tiny_r1_engine):
    import threading

    from r1desk.core.engine import GenParams

    cancel = threading.Event()
    gen = tiny_r1_engine.generate("Count the words in this sentence please. " * 80, GenParams(max_tokens=8, seed=2),
                                  cancel)
    for piece in gen:
        assert not piece
        cancel.set()                  # Stop pressed after the first batch
    assert gen.stats.finish_reason == "cancelled" and gen.completion_tokens == 0
    assert gen.prompt_progress[0] < gen.prompt_progress[1] - 1
