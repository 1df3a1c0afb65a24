"""Exports: JSONL with OpenAI-style messages, CSV, and the SFT / preference-pair fine-tuning set."""
from __future__ import annotations

import csv
import io
import json

import pytest

from r1desk.storage.queries import TurnFilters
from r1desk.storage.records import AuditInputError
from tests.storage.conftest import MODEL, decision, log_turn


@pytest.fixture
def reviewed(audit):
    good = log_turn(audit, "What is 2+2?", thinking="Simple sum.", answer="4")
    corrected = log_turn(audit, "Capital of Australia?", thinking="Sydney is big.", answer="Sydney")
    refused = log_turn(audit, "How do I bake bread?", answer="I cannot help with that.",
                       decisions=[decision("answer", "flag")])
    unreviewed = log_turn(audit, "Unreviewed, with, commas\nand \"quotes\"", answer="line1\nline2")
    audit.review(good, "ok", reviewer="ann")
    audit.review(corrected, "other", note="wrong fact", reviewer="ann", corrected_answer="Canberra")
    audit.review(refused, "over-refusal", reviewer="ann",
                 corrected_answer="Mix flour, water, yeast and salt; knead; let it rise; bake.")
    audit.set_feedback(good, "up", "thanks")
    return {"good": good, "corrected": corrected, "refused": refused, "unreviewed": unreviewed}


def test_jsonl_has_messages_and_metadata(audit, reviewed):
    out = io.StringIO()
    assert audit.export("jsonl", out) == 4
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    first = lines[0]
    assert first["id"] == reviewed["good"]
    assert first["messages"] == [{"role": "user", "content": "What is 2+2?"},
                                 {"role": "assistant", "content": "4", "reasoning_content": "Simple sum."}]
    meta = first["r1desk"]
    assert meta["model"]["sha256"] == MODEL["sha256"] and meta["settings"]["temperature"] == 0.6
    assert meta["review"]["label"] == "ok" and meta["feedback"] == {"thumbs": 1, "comment": "thanks"}
    assert meta["status"] == "done" and meta["prompt_sent"] == "<user>What is 2+2?"
    assert lines[2]["r1desk"]["decisions"][0]["action"] == "flag"
    assert lines[2]["r1desk"]["decisions"][0]["window"] is False


def test_csv_round_trips_awkward_text(audit, reviewed):
    out = io.StringIO()
    assert audit.export("csv", out) == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["id"] for r in rows] == list(reviewed.values())
    assert rows[3]["prompt_typed"] == 'Unreviewed, with, commas\nand "quotes"'
    assert rows[2]["max_action"] == "flag" and rows[2]["review_label"] == "over-refusal"
    assert rows[0]["feedback"] == "up"


def test_sft_examples_and_preference_pairs(audit, reviewed):
    out = io.StringIO()
    assert audit.export("sft", out) == 3
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    sft = [r for r in records if r["kind"] == "sft"]
    pairs = [r for r in records if r["kind"] == "preference"]
    assert [r["id"] for r in sft] == [reviewed["good"]]
    assert sft[0]["messages"][1] == {"role": "assistant", "content": "4"}
    assert {p["id"] for p in pairs} == {reviewed["corrected"], reviewed["refused"]}
    canberra = next(p for p in pairs if p["id"] == reviewed["corrected"])
    assert canberra["chosen"] == [{"role": "assistant", "content": "Canberra"}]
    assert canberra["rejected"] == [{"role": "assistant", "content": "Sydney"}]
    assert canberra["prompt"] == [{"role": "user", "content": "Capital of Australia?"}]


def test_sft_pairs_to_their_own_file_and_with_thinking(audit, reviewed):
    out, pairs = io.StringIO(), io.StringIO()
    audit.export("sft", out, pairs_out=pairs, with_thinking=True)
    [example] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert example["messages"][1]["content"] == "<think>\nSimple sum.\n</think>\n\n4"
    assert len(pairs.getvalue().splitlines()) == 2
    assert all("kind" not in json.loads(line) for line in pairs.getvalue().splitlines())


def test_export_filters_and_is_audited(audit, reviewed):
    out = io.StringIO()
    assert audit.export("jsonl", out, TurnFilters(review_label="over-refusal"), actor="carol",
                        destination="x.jsonl") == 1
    [event] = audit.list_admin_events(action="audit.export")
    assert event["actor"] == "carol"
    assert event["details"] == {"format": "jsonl", "records": 1, "destination": "x.jsonl",
                                "filters": {"review_label": "over-refusal"}}
    assert audit.verify().ok


def test_unknown_format_is_a_user_error(audit):
    with pytest.raises(AuditInputError, match="format"):
        audit.export("xml", io.StringIO())


def test_export_streams_in_batches(audit, monkeypatch):
    from r1desk.storage import export

    monkeypatch.setattr(export, "BATCH", 2)
    made = [log_turn(audit, f"q{i}") for i in range(5)]
    out = io.StringIO()
    assert audit.export("jsonl", out) == 5
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == made


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://evil","x")', "+1+cmd|' /C calc'!A0", "-2+3",
                                     "@SUM(A1)", "\tleading tab", "\rleading CR"])
def test_csv_cells_that_look_like_formulas_are_neutralised(audit, payload):
    log_turn(audit, payload, thinking=payload, answer=payload)
    out = io.StringIO()
    assert audit.export("csv", out) == 1
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    for column in ("prompt_typed", "thinking", "answer", "answer_shown"):
        assert row[column] == "'" + payload, column
    jsonl = io.StringIO()        # the JSONL export keeps the exact text
    audit.export("jsonl", jsonl)
    assert json.loads(jsonl.getvalue())["messages"][0]["content"] == payload


def test_backup_is_private(audit, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        target = audit.backup(tmp_path / "copy.db")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
