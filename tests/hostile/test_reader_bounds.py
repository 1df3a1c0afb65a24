"""The GGUF header reader in process: bounded time and allocation for the worst files within its limits."""
from __future__ import annotations

import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from r1desk.core import gguf_info
from r1desk.core.gguf_info import Oversized, read_gguf_header, read_model_info
from r1desk.errors import ModelFileError
from tests.hostile import builders as b

pytest.importorskip("gguf.constants")      # imported by the reader on first use: not part of the timings


def _measure(fn):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = fn()
    except ModelFileError as exc:
        result = exc
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


def test_skipped_arrays_cost_a_seek_not_their_size(tmp_path: Path) -> None:
    path = b.huge_u8_array(tmp_path / "u8.gguf", 1 << 34)
    info, seconds, peak = _measure(lambda: read_model_info(path))
    assert info.architecture == "llama"                       # a 16 GB array, stepped over
    assert seconds < 1.0 and peak < 5 << 20


def test_a_2gb_string_is_never_decoded(tmp_path: Path) -> None:
    path = b.huge_name(tmp_path / "name.gguf")
    header, seconds, peak = _measure(lambda: read_gguf_header(path))
    assert header.fields["general.name"] == Oversized(2 << 30)
    assert read_model_info(path).name == "name"                # the file's name instead
    assert seconds < 1.0 and peak < 5 << 20


def test_walking_the_most_strings_allowed_stays_bounded(tmp_path: Path, monkeypatch) -> None:
    """The worst file within the limits: MAX_WALKED_ITEMS empty strings in a skipped array.
    (A smaller budget here keeps the suite fast; the cost is linear in it.)"""
    monkeypatch.setattr(gguf_info, "MAX_WALKED_ITEMS", 200_000)
    head = b.header(1, 2) + b.kv_str("general.architecture", "llama") + \
        b.kv_array_header("tokenizer.ggml.merges", b.STRING, 200_000)
    path = b._with_tensor_after(tmp_path / "walk.gguf", head, 8 * 200_000)
    info, seconds, peak = _measure(lambda: read_model_info(path))
    assert info.architecture == "llama"
    assert seconds < 2.0 and peak < 5 << 20
    monkeypatch.setattr(gguf_info, "MAX_WALKED_ITEMS", 199_999)
    with pytest.raises(ModelFileError, match="more than 199999 array items"):
        read_model_info(path)


@pytest.mark.parametrize("build, message", [
    (b.nested_arrays, "array items to step over"),
    (b.many_tensors, "tensors"),
    (b.huge_string_array, "268435456 items"),
    (b.duplicate_arch, "appears twice"),
], ids=["nested", "tensors", "strings", "duplicate"])
def test_absurd_counts_are_refused_before_any_work(tmp_path: Path, build, message: str) -> None:
    path = build(tmp_path / "bad.gguf")
    error, seconds, peak = _measure(lambda: read_model_info(path))
    assert isinstance(error, ModelFileError) and message in str(error)
    assert seconds < 1.0 and peak < 5 << 20


def test_duplicate_tensor_names_and_deep_nesting_are_corrupt(tmp_path: Path) -> None:
    kvs = b.kv_str("general.architecture", "llama")
    two = b.header(2, 1) + kvs + b.tensor("a", (16,)) + b.tensor("a", (16,), offset=64)
    with pytest.raises(ModelFileError, match="tensor 'a' appears twice"):
        read_model_info(b.write(tmp_path / "t.gguf", two + b"\0" * 256))
    deep = b.header(0, 2) + kvs + b.kv_array_header("x", b.ARRAY, 1) + struct.pack("<IQ", b.ARRAY, 1) + \
        struct.pack("<IQ", b.U8, 0)
    with pytest.raises(ModelFileError, match="nested more than 2 deep"):
        read_model_info(b.write(tmp_path / "d.gguf", deep + b"\0" * 64))


def test_metadata_shown_is_cut_and_has_no_control_characters(tmp_path: Path) -> None:
    info = read_model_info(b.control_name(tmp_path / "ctl.gguf"))
    assert "\x1b" not in info.name and "\x07" not in info.name and "\\x1b" in info.name
    assert len(info.name) <= gguf_info.MAX_SHOWN_CHARS and info.name.endswith("…")


def test_symlink_loop_fifo_and_broken_link_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="symbolic link loop"):
        read_model_info(b.symlink_loop(tmp_path))
    with pytest.raises(ModelFileError, match=r"not a regular file \(a FIFO"):
        read_model_info(b.fifo(tmp_path))
    (tmp_path / "broken.gguf").symlink_to(tmp_path / "nowhere.gguf")
    with pytest.raises(ModelFileError, match="broken symbolic link"):
        read_model_info(tmp_path / "broken.gguf")
