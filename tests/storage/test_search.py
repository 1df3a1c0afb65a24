"""Full-text search and filters; any query string is safe."""
from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1desk.storage.auditlog import AuditLog
from r1desk.storage.queries import TurnFilters, phrase
from r1desk.storage.records import AuditInputError
from tests.storage.conftest import decision, log_turn


@pytest.fixture
def corpus(audit, monkeypatch):
    from r1desk.storage import auditlog as module

    with monkeypatch.context() as m:
        m.setattr(module, "now", lambda: "2024-01-15T10:00:00.000Z")
        old = log_turn(audit, "Wie funktioniert Photosynthese?", thinking="Chlorophyll absorbs light",
                       answer="Pflanzen nutzen Licht.", model={"name": "qwen-1.5b", "sha256": "11" * 32})
    flagged = log_turn(audit, "Tell me about volcanoes", thinking="Magma is hot; idiots ignore warnings",
                       answer="Volcanoes erupt when pressure builds.",
                       decisions=[decision("thinking", "flag", label="insult")])
    mixed = log_turn(audit, "Explain recursion", thinking="递归 means recursion", answer="A function calls itself.",
                     language={"answer": {"events": [{"lang": "zh"}]}})
    audit.review(mixed, "language-mixing", reviewer="ann")
    return {"old": old, "flagged": flagged, "mixed": mixed}


def ids(rows):
    return [r["id"] for r in rows]


def test_searches_prompt_thinking_and_answer(audit, corpus):
    assert ids(audit.search("photosynthese")) == [corpus["old"]]
    assert ids(audit.search("chlorophyll")) == [corpus["old"]], "thinking is indexed"
    assert ids(audit.search("erupt")) == [corpus["flagged"]], "answer is indexed"
    assert ids(audit.search("递归")) == [corpus["mixed"]]
    hit = audit.search("magma")[0]
    assert "[Magma]" in hit["snippet"]


def test_fts_syntax_works_when_valid(audit, corpus):
    assert set(ids(audit.search("volcanoes OR recursion"))) == {corpus["flagged"], corpus["mixed"]}
    assert ids(audit.search("volc*")) == [corpus["flagged"]]
    assert ids(audit.search('"calls itself"')) == [corpus["mixed"]]
    assert ids(audit.search("thinking: magma")) == [corpus["flagged"]]
    assert audit.search("answer: magma") == []


@pytest.mark.parametrize("query", ['magma "', "AND", "(magma", "magma AND", "NEAR(", "*", "-magma", "magma:",
                                   "'); DROP TABLE turns; --", '"" OR ""', "a\x00b", "^", "col:umn:x", "\ud800 lone"])
def test_malformed_fts_falls_back_to_a_phrase(audit, corpus, query):
    audit.search(query)  # no error
    assert audit.list_turns(limit=10), "nothing was dropped"
    assert len(audit.list_turns()) == 3


def test_fallback_phrase_finds_literal_text(audit):
    tid = log_turn(audit, 'what does "C++ (" mean?')
    assert ids(audit.search('"C++ ("')) == [tid]
    assert phrase('say "hi"') == '"say ""hi"""'


def test_filters(audit, corpus):
    assert ids(audit.search("", date_to="2024-01-15")) == [corpus["old"]]
    assert corpus["old"] not in ids(audit.search(None, date_from="2024-01-16"))
    assert ids(audit.list_turns(model="qwen-1.5b")) == [corpus["old"]]
    assert ids(audit.list_turns(model="11" * 32)) == [corpus["old"]]
    assert ids(audit.list_turns(channel="thinking")) == [corpus["flagged"]]
    assert ids(audit.list_turns(channel="answer")) == []
    assert ids(audit.list_turns(action="flag", label="insult")) == [corpus["flagged"]]
    assert ids(audit.list_turns(label="toxicity")) == []
    assert ids(audit.list_turns(reviewed=True)) == [corpus["mixed"]]
    assert set(ids(audit.list_turns(reviewed=False))) == {corpus["old"], corpus["flagged"]}
    assert ids(audit.list_turns(review_label="language-mixing")) == [corpus["mixed"]]
    assert ids(audit.list_turns(language_mixing=True)) == [corpus["mixed"]]
    assert ids(audit.search("volcanoes", TurnFilters(channel="thinking", action="flag"))) == [corpus["flagged"]]
    assert audit.search("volcanoes", TurnFilters(reviewed=True)) == []


def test_newest_first_and_paging(audit, corpus):
    assert ids(audit.list_turns()) == [corpus["mixed"], corpus["flagged"], corpus["old"]]
    assert ids(audit.list_turns(limit=1, offset=1)) == [corpus["flagged"]]
    assert len(audit.search("volcanoes OR recursion OR photosynthese", order="relevance")) == 3


@pytest.mark.parametrize("kwargs", [{"channel": "brain"}, {"action": "nuke"}, {"review_label": "meh"},
                                    {"status": "weird"}, {"date_from": "yesterday"}, {"date_to": "2024-02-30"}])
def test_bad_filter_values_are_user_errors(audit, kwargs):
    with pytest.raises(AuditInputError):
        audit.list_turns(**kwargs)


def test_running_turns_are_listed_but_not_yet_searchable(audit):
    tid = audit.start_turn(prompt_typed="unfinished zebra")
    audit.update_partial(tid, thinking="zebra stripes", answer="")
    assert ids(audit.list_turns(status="running")) == [tid]
    assert audit.search("zebra") == []
    audit.finish_turn(tid, result={"finish_reason": "stop"})
    assert ids(audit.search("zebra")) == [tid]


@pytest.fixture(scope="module")
def shared_audit(tmp_path_factory):
    log = AuditLog(tmp_path_factory.mktemp("search") / "audit.db")
    log_turn(log, "the quick brown fox", thinking="jumps over", answer="the lazy dog")
    yield log
    log.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=40) | st.text(alphabet='"*()^:-+ ANDORNEAR{}', max_size=20))
def test_any_string_is_safe(shared_audit, query):
    rows = shared_audit.search(query)
    assert isinstance(rows, list)
    assert len(rows) <= 1
    conn = sqlite3.connect(shared_audit.path)
    assert conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 1
    conn.close()


def test_severity_order_lists_flagged_and_mixed_turns_first(audit, corpus):
    rows = audit.search(None, order="severity", limit=10)
    assert ids(rows) == [corpus["flagged"], corpus["mixed"], corpus["old"]]
    found = audit.search("photosynthesis OR volcanoes OR recursion", order="severity")
    assert ids(found)[0] == corpus["flagged"]
    with pytest.raises(AuditInputError, match="order"):
        audit.search(None, order="sideways")


def test_finished_turn_without_partials_shows_its_answer(audit):
    tid = audit.start_turn(prompt_typed="Hi")
    audit.finish_turn(tid, result={"finish_reason": "stop", "thinking": "hm", "answer_raw": "Hello!"})
    turn = audit.get_turn(tid)
    assert turn["answer_shown"] == "Hello!" and turn["thinking_shown"] == "hm"


def test_one_huge_turn_is_indexed_and_snippeted_bounded(audit):
    """A 1 MB turn used to make every search re-tokenize all of it for the snippet (48 s for `hello`)."""
    from r1desk.storage.migrations import FTS_FIELD_CHARS

    huge = "hello " * (1_000_000 // 6)
    big = log_turn(audit, huge, thinking=huge, answer=huge + " tailword")
    small = log_turn(audit, "hello small world", answer="hi")
    db = audit._db()
    sizes = db.execute("SELECT length(prompt_typed), length(thinking), length(answer) FROM turns_fts_source"
                       " WHERE seq = (SELECT seq FROM turns WHERE id = ?)", [big]).fetchone()
    assert max(sizes) <= FTS_FIELD_CHARS
    # the index holds no term beyond the bound (nor does the snippet read it)
    assert audit.search("tailword") == []
    rows = audit.search("hello")
    assert {r["id"] for r in rows} == {big, small}
    assert all(len(r["snippet"]) < 1000 for r in rows)
    assert audit.get_turn(big)["answer"].endswith("tailword"), "the log itself keeps the whole text"
    audit.prune(0, actor="admin (test)")              # un-indexing uses the same bounded text
    assert db.execute("INSERT INTO turns_fts(turns_fts, rank) VALUES ('integrity-check', 1)") is not None
    assert audit.search("hello") == []
