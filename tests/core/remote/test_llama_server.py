"""End to end through a real OpenAI-compatible server: llama-cpp-python's own (``python -m llama_cpp.server``)
on 127.0.0.1 serving the tiny random-weight R1 model; r1desk's chat (CLI and core), Stop, and the audit log."""
from __future__ import annotations

import json
import threading

import pytest

from r1desk.cli import main
from r1desk.core.backend import BackendConfig, open_backend
from r1desk.core.chat import ChatSession, TurnRequest
from r1desk.core.engine import GenParams
from r1desk.core.events import Delta, TurnFinished
from r1desk.settings import Settings
from r1desk.storage.auditlog import AuditLog
from tests.support.llama_server import LlamaServer, server_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not server_available(), reason="llama-cpp-python[server] extras not installed")]


@pytest.fixture(scope="module")
def llama_server(tiny_r1_path):
    with LlamaServer(tiny_r1_path) as srv:
        yield srv


def test_models_list_names_the_served_model(llama_server, capsys):
    assert main(["models", "list", "--server", llama_server.url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["server_type"] == "llama-cpp-python"
    assert [m["id"] for m in data["models"]] == ["deepseek-r1-tiny"] and data["models"][0]["r1"]


def test_cli_chat_through_the_server_is_logged_with_the_server(llama_server, tmp_path, capsys):
    db = tmp_path / "audit.db"
    code = main(["chat", "--server", llama_server.url, "--model", "deepseek-r1-tiny", "-p", "What is 2+2?",
                 "--max-tokens", "24", "--seed", "3", "--db", str(db), "--json", "--no-guard", "--language", "off"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usage"]["completion_tokens"] > 0 and out["finish_reason"] in ("stop", "length")
    assert out["model"]["backend"] == "openai" and out["model"]["endpoint"] == llama_server.url
    with AuditLog(db) as audit:
        row = audit.get_turn(out["turn_id"])
        assert row["model_name"] == "deepseek-r1-tiny" and row["model"]["model_id"] == "deepseek-r1-tiny"
        assert row["model"]["server"] == "llama-cpp-python server"
        assert json.loads(row["prompt_sent"])[-1]["content"].startswith("What is 2+2?")
        assert row["status"] == "done" and audit.verify().ok


def test_stop_mid_answer_cancels_the_http_stream_and_keeps_the_partial_turn(llama_server, tmp_path):
    backend = open_backend(BackendConfig(kind="openai", model="deepseek-r1-tiny", n_ctx=2048,
                                         options={"url": llama_server.url}))
    audit = AuditLog(tmp_path / "audit.db")
    session = ChatSession(backend, audit=audit, config=Settings().chat_config(), guarded=False)
    cancel = threading.Event()
    events = []
    for event in session.run_turn(TurnRequest("Tell me a long story.", language=None,
                                              params=GenParams(max_tokens=1500, seed=1)), cancel):
        events.append(event)
        if sum(isinstance(e, Delta) for e in events) == 5:
            cancel.set()
    result = [e.result for e in events if isinstance(e, TurnFinished)][-1]
    assert result.finish_reason == "cancelled"
    assert 0 < result.usage["completion_tokens"] < 200
    row = audit.get_turn(result.turn_id)
    assert row["status"] == "cancelled" and (row["thinking"] or row["answer"])
    # the server is free again at once: the next turn runs to its end
    again = [e.result for e in session.run_turn(TurnRequest("hi", language=None, params=GenParams(max_tokens=8)))
             if isinstance(e, TurnFinished)][-1]
    assert again.finish_reason in ("stop", "length")
    session.close()
    audit.close()
