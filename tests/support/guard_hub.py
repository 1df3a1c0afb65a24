"""A small guard-model GGUF and the fake Hub (tests/core/test_downloads.py) serving the guard catalog's files.

``guard_hub`` fixture users: ``from tests.support.guard_hub import guard_hub  # noqa: F401`` — the hub
serves a small Llama Guard 3 GGUF under the catalog's file names, and HF_ENDPOINT points at it (read
when a download starts: core.guard.harm.install.download).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from r1desk.core.guard.harm import install
from tests.core.test_downloads import FakeHub, make_gguf, serve_hub

OFFER_ID = "llama-guard-3-1b-q4_k_m"


def make_guard_gguf(path: Path, name: str = "Llama Guard 3 1B test", rows: int = 256) -> Path:
    """A real GGUF, llama architecture, named like Llama Guard 3 (so detect_profile knows it)."""
    return make_gguf(path, rows, name=name)


@pytest.fixture
def guard_payload(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_guard_gguf(tmp_path_factory.mktemp("guard-src") / "g.gguf").read_bytes()


@pytest.fixture
def guard_hub(guard_payload: bytes, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    files = {o.entry.filename: guard_payload for o in install.offers() if o.entry.filename}
    yield from serve_hub(files, monkeypatch)
