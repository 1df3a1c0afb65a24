"""Test isolation: every test gets its own r1desk profile and no network, Qt runs offscreen."""
from __future__ import annotations

import os

import pytest

# Set before anything imports huggingface_hub, transformers or Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_profile(tmp_path, monkeypatch):
    """Point data/config/cache/log dirs at a temporary folder (never the real user profile)."""
    home = tmp_path / "r1desk-home"
    monkeypatch.setenv("R1DESK_HOME", str(home))
    # The site folder is a fixed system path (R1DESK_HOME does not move it): point the constant at the profile.
    from r1desk import paths
    from r1desk.core import roles

    monkeypatch.setattr(paths, "SITE_CONFIG_DIR", home / "site")
    # Cheap hashes in tests (the shipped floor is checked in tests/core/test_roles.py).
    monkeypatch.setattr(roles, "SCRYPT_FLOOR", roles.ScryptParams(n=2 ** 10, r=8, p=1, dklen=16))
    yield home


pytest_plugins = ["tests.fixtures.models", "tests.fixtures.classifiers", "tests.fixtures.guard_models"]
