"""A small guard-model GGUF and the fake Hub (tests/core/test_downloads.py) serving the guard catalog's files.

``guard_hub`` fixture users: ``from tests.support.guard_hub import guard_hub  # noqa: F401`` — the hub
serves a small Llama Guard 3 GGUF under the catalog's file names, and HF_ENDPOINT points at it (read
when a download starts: core.guard.harm.install.download).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from r1desk.core.guard.harm import install
from tests.core.test_downloads import FakeHub

OFFER_ID = "llama-guard-3-1b-q4_k_m"


def make_guard_gguf(path: Path, name: str = "Llama Guard 3 1B test", rows: int = 256) -> Path:
    """A real GGUF, llama architecture, named like Llama Guard 3 (so detect_profile knows it)."""
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_tensor("token_embd.weight", np.arange(rows * 256, dtype=np.float32).reshape(rows, 256))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def guard_payload(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_guard_gguf(tmp_path_factory.mktemp("guard-src") / "g.gguf").read_bytes()


@pytest.fixture
def guard_hub(guard_payload: bytes, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    files = {o.entry.filename: guard_payload for o in install.offers() if o.entry.filename}
    server = FakeHub(files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    yield server
    server.shutdown()
    server.server_close()
    thread.join()
