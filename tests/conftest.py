"""Test isolation: every test gets its own r1desk profile and no network, Qt runs offscreen."""
from __future__ import annotations

import os
import sys
import threading

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


# Threads a session-scoped fixture may start and keep (a model loaded once for the whole run).
LONG_LIVED_THREADS = ("r1desk-model-hash",)
LEAK_JOIN_S = 3.0           # a thread that is already finishing gets this long to end


@pytest.fixture(autouse=True)
def _no_leaks(request):
    """Fail a test that leaves threads running, or Qt timers or top-level windows open (after napari).

    Threads started by the test must have ended (each gets ``LEAK_JOIN_S`` to finish what it is
    doing, e.g. a guard worker told to stop). With Qt in the test, every top-level widget it opened
    must be closed by its end."""
    before = set(threading.enumerate())
    qt = "qtbot" in request.fixturenames
    widgets_before = _visible_top_levels() if qt else set()
    yield
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        return                                   # the test already failed: report that, not its debris
    leaked = [t for t in threading.enumerate()
              if t not in before and t.is_alive() and not t.name.startswith(LONG_LIVED_THREADS)
              and not isinstance(t, threading._DummyThread)]   # foreign threads (Qt's) that ran Python code
    for thread in leaked:
        thread.join(LEAK_JOIN_S)
    still = sorted(t.name for t in leaked if t.is_alive())
    assert not still, f"threads left running by the test: {still}"
    if qt:
        from PySide6.QtWidgets import QApplication

        QApplication.processEvents()
        opened = _visible_top_levels() - widgets_before
        assert not opened, f"top-level windows left open by the test: {sorted(opened)}"


def _visible_top_levels() -> set[str]:
    if "PySide6.QtWidgets" not in sys.modules:
        return set()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return set()
    return {f"{type(w).__name__}:{w.objectName() or id(w)}" for w in QApplication.topLevelWidgets()
            if w.isVisible()}


# Tests that generate real text (llama.cpp on a real GGUF) are "slow": `pytest -m "not slow"` is the fast loop.
REAL_MODEL_FIXTURES = frozenset({"tiny_r1_engine", "smollm2_engine", "tiny_r1_path", "smollm2_path",
                                 "tiny_qwen3guard_path", "tiny_llama_guard_path", "tiny_qwen3guard_judge",
                                 "tiny_llama_guard_judge"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


pytest_plugins = ["tests.fixtures.models", "tests.fixtures.classifiers", "tests.fixtures.guard_models"]
