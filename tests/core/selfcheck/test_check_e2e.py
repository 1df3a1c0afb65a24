"""The self-check end to end: real llama.cpp on the tiny R1 model, the real chat pipeline, guard
pipeline, fastText language id and SQLite audit log; only the toxicity scores are scripted (a random
-weight model answers garbage, so we assert structure and the consistency of the metrics)."""
from __future__ import annotations

import threading
import zlib

import pytest

from r1desk.core.guard.toxicity import LABELS
from r1desk.core.selfcheck.check import SelfCheckOptions, run_model_selfcheck
from r1desk.errors import UserFacingError
from r1desk.settings import Settings

pytestmark = pytest.mark.slow


class HashScorer:
    """Deterministic: a segment's scores come from its crc32, so about a third of segments get flagged."""

    name = "hash"
    labels = LABELS
    languages = frozenset({"en"})

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            h = zlib.crc32(text.encode("utf-8"))
            scores = {label: 0.01 for label in LABELS}
            if h % 3 == 0:
                scores["toxicity"] = 0.95
            if h % 7 == 0:
                scores["threat"] = 0.97
            out.append(scores)
        return out


@pytest.fixture
def factory():
    from r1desk.core.chat import ChatSession
    from r1desk.core.guard.langid import LangId
    from r1desk.core.guard.session import GuardSession
    from r1desk.core.guard.toxicity import ToxicityClassifier

    langid = LangId()

    def make(engine, *, audit, config, guarded=True):
        guard = GuardSession(config.guard, enabled=guarded, classifiers=[ToxicityClassifier(HashScorer())], langid=langid)
        return ChatSession(engine, audit=audit, config=config, guard=guard, guarded=guarded)

    return make


@pytest.fixture
def audit(tmp_path):
    from r1desk.storage.auditlog import AuditLog

    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


def test_selfcheck_on_the_tiny_r1_model(tiny_r1_engine, factory, audit, tmp_path):
    progress = []
    opts = SelfCheckOptions(suite="builtin", guards="both", limit=5, seed=3, max_tokens=10,
                            report=tmp_path / "report.html")
    run = run_model_selfcheck(opts, config=Settings().chat_config(), audit=audit, engine=tiny_r1_engine,
                              session_factory=factory, progress=progress.append)
    assert not run.cancelled and len(run.outcomes) == 10
    assert [o.guards for o in run.outcomes] == ["on", "off"] * 5
    assert {o.expected for o in run.outcomes} == {"safe", "unsafe"}
    # a random-weight R1 rarely closes its thinking in 12 tokens: such turns are "no answer", not refusals
    assert all(o.refusal in ("complied", "refused", "partial", "no_answer") for o in run.outcomes)
    assert all(o.no_answer == (o.refusal == "no_answer") for o in run.outcomes)
    assert all(o.turn_id for o in run.outcomes)
    assert run.model["sha256"] and len(run.model["sha256"]) == 64 and run.model["is_r1"]
    # the metrics agree with the per-prompt outcomes
    for mode in ("on", "off"):
        mine = [o for o in run.outcomes if o.guards == mode]
        m = run.metrics["modes"][mode]
        _assert_consistent(mine, run.metrics["modes"][mode])
        assert m["n"] == 5 and sum(a["n"] for a in m["per_harm_area"].values()) == 5
    # monitor mode never blocks; the scripted scorer does flag something somewhere
    assert not any(o.blocked for o in run.outcomes if o.guards == "off")
    assert any(sum(o.flags.values()) for o in run.outcomes)
    assert all(o.strongest["answer"] in ("allow", "flag") for o in run.outcomes if o.guards == "off")
    # same seed, same prompt: generation is deterministic, so the raw thinking starts the same in both modes
    first_on, first_off = run.outcomes[0], run.outcomes[1]
    n = min(len(first_on.thinking), len(first_off.thinking), 10)
    assert first_on.thinking[:n] == first_off.thinking[:n]
    # logged: the run (done, with metrics and report), and one titled conversation per prompt and mode
    runs = audit.list_selfcheck_runs()
    assert len(runs) == 1 and runs[0]["id"] == run.run_id and runs[0]["status"] == "done"
    assert runs[0]["metrics"]["modes"]["on"]["n"] == 5 and runs[0]["report_path"] == str(tmp_path / "report.html")
    assert runs[0]["model_sha256"] == run.model["sha256"]
    html = (tmp_path / "report.html").read_text("utf-8")
    assert run.model["sha256"] in html and "<script" not in html
    assert progress[-1].done == progress[-1].total == 10


def _assert_consistent(outcomes, m):
    """The mode's metrics agree with its per-prompt outcomes."""
    judged = [o for o in outcomes if o.judged]
    unsafe = [o for o in judged if o.expected == "unsafe"]
    safe = [o for o in judged if o.expected == "safe"]
    assert m["n_unsafe"] == len(unsafe) and m["n_safe"] == len(safe)
    assert m["no_answer_rate"] == pytest.approx(sum(o.no_answer for o in outcomes) / len(outcomes))
    assert m["unsafe_response_rate"] == (pytest.approx(sum(o.unsafe_response for o in unsafe) / len(unsafe))
                                         if unsafe else None)
    assert m["over_refusal_rate"] == (pytest.approx(sum(o.over_refusal for o in safe) / len(safe))
                                      if safe else None)
    for ch in ("prompt", "thinking", "answer"):
        assert m["flag_rates"][ch] == pytest.approx(sum(o.flags[ch] > 0 for o in outcomes) / len(outcomes))


def test_selfcheck_on_smollm2_judges_real_answers(smollm2_engine, factory):
    """SmolLM2 does not think, so every turn has an answer for the refusal detector to judge."""
    opts = SelfCheckOptions(suite="builtin", guards="both", limit=2, seed=2, max_tokens=10, language=None)
    run = run_model_selfcheck(opts, config=Settings().chat_config(), engine=smollm2_engine, session_factory=factory)
    assert len(run.outcomes) == 4 and all(o.judged for o in run.outcomes)
    assert all(o.refusal in ("complied", "refused", "partial") for o in run.outcomes)
    assert all(o.answer.strip() for o in run.outcomes if not o.blocked)
    for mode in ("on", "off"):
        m = run.metrics["modes"][mode]
        _assert_consistent([o for o in run.outcomes if o.guards == mode], m)
        assert m["unsafe_response_rate"] is not None and m["over_refusal_rate"] is not None


def test_selfcheck_is_reproducible_with_the_same_seed(tiny_r1_engine, factory):
    opts = SelfCheckOptions(suite="builtin", guards="off", limit=3, seed=11, max_tokens=10)
    a = run_model_selfcheck(opts, config=Settings().chat_config(), engine=tiny_r1_engine, session_factory=factory)
    b = run_model_selfcheck(opts, config=Settings().chat_config(), engine=tiny_r1_engine, session_factory=factory)
    assert [o.prompt_id for o in a.outcomes] == [o.prompt_id for o in b.outcomes]
    assert [(o.thinking, o.answer) for o in a.outcomes] == [(o.thinking, o.answer) for o in b.outcomes]


def test_cancel_mid_run_is_logged_as_cancelled(tiny_r1_engine, factory, audit):
    cancel = threading.Event()

    def progress(p):
        if p.outcome is not None and p.done == 2:
            cancel.set()

    opts = SelfCheckOptions(suite="builtin", guards="on", limit=5, seed=0, max_tokens=8)
    run = run_model_selfcheck(opts, config=Settings().chat_config(), audit=audit, engine=tiny_r1_engine,
                              session_factory=factory, progress=progress, cancel=cancel)
    assert run.cancelled and len(run.outcomes) == 2
    assert audit.list_selfcheck_runs()[0]["status"] == "cancelled"


def test_bad_options_fail_before_any_model_work(factory):
    with pytest.raises(UserFacingError, match="--guards"):
        run_model_selfcheck(SelfCheckOptions(guards="sometimes"), config=Settings().chat_config(), engine=object())
    with pytest.raises(UserFacingError, match="--seed"):
        run_model_selfcheck(SelfCheckOptions(seed=-2), config=Settings().chat_config(), engine=object())
    with pytest.raises(UserFacingError, match="--max-tokens"):
        run_model_selfcheck(SelfCheckOptions(max_tokens=0), config=Settings().chat_config(), engine=object())
    with pytest.raises(UserFacingError, match="--limit"):
        run_model_selfcheck(SelfCheckOptions(limit=0), config=Settings().chat_config(), engine=object())
    with pytest.raises(UserFacingError, match="not found"):
        run_model_selfcheck(SelfCheckOptions(suite="/no/such.csv"), config=Settings().chat_config(), engine=object())


def test_a_run_whose_sessions_cannot_be_built_is_logged_as_failed(tiny_r1_engine, audit):
    def broken_factory(*args, **kwargs):
        raise UserFacingError("classifiers missing")

    with pytest.raises(UserFacingError, match="classifiers missing"):
        run_model_selfcheck(SelfCheckOptions(suite="builtin", limit=1), config=Settings().chat_config(), audit=audit,
                            engine=tiny_r1_engine, session_factory=broken_factory)
    runs = audit.list_selfcheck_runs()
    assert len(runs) == 1 and runs[0]["status"] == "failed"


def test_a_report_that_cannot_be_written_is_not_recorded_as_written(tiny_r1_path, audit, tmp_path):
    from r1desk.core.backend import ModelDescription, ModelIdentity
    from r1desk.core.engine import GenParams
    from r1desk.core.gguf_info import read_model_info
    from tests.core.selfcheck.fakes import FakeSession, Script

    class Scripts(dict):
        def __missing__(self, key):
            return Script("I'm sorry, but I can't help with that.")

    class Session(FakeSession):
        def generation_params(self, **overrides):
            return GenParams(max_tokens=overrides.get("max_tokens") or 8)

    info = read_model_info(tiny_r1_path)

    class Backend:                     # a loaded model that the scripted sessions never call
        loaded = True

        def describe(self):
            return ModelDescription(ModelIdentity("llama.cpp", str(info.path), "0" * 64), info.name, info.is_r1)

    engine = Backend()
    (tmp_path / "not-a-folder").write_text("")
    opts = SelfCheckOptions(suite="builtin", guards="on", limit=2, report=tmp_path / "not-a-folder" / "r.html")
    with pytest.raises(UserFacingError, match="Cannot write the report"):
        run_model_selfcheck(opts, config=Settings().chat_config(), audit=audit, engine=engine,
                            session_factory=lambda *a, **k: Session(Scripts()))
    [run] = audit.list_selfcheck_runs()
    assert run["status"] == "done" and run["metrics"]["modes"]["on"]["n"] == 2
    assert run["report_path"] is None
