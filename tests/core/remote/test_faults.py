"""The remote backend against a fault-injecting server on 127.0.0.1: every response shape, every failure of
issue 15 -> one RemoteError (a plain message), the partial turn logged with its status, Stop at once."""
from __future__ import annotations

import socket
import threading

import pytest

from r1desk.core.backend import BackendConfig, LinkedEvent, open_backend
from r1desk.core.chat import ChatSession, TurnRequest
from r1desk.core.engine import GenParams
from r1desk.core.events import Notice, TurnFinished, TurnStarted
from r1desk.core.prompts import Message, PromptRequest
from r1desk.core.remote import RemoteBackend, RemoteError
from r1desk.settings import Settings
from r1desk.storage.auditlog import AuditLog
from tests.support.fake_openai import FakeOpenAIServer, Scenario

MODEL = "deepseek-r1-distill-qwen-7b"
TURN_TIMEOUT_S = 20


@pytest.fixture
def server():
    srv = FakeOpenAIServer()
    yield srv
    srv.close()


@pytest.fixture
def audit(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


def backend(url: str, model: str = MODEL, **options) -> RemoteBackend:
    b = open_backend(BackendConfig(kind="openai", model=model, n_ctx=4096, options={"url": url, **options}))
    assert isinstance(b, RemoteBackend)
    return b


def session(b, audit) -> ChatSession:
    return ChatSession(b, audit=audit, config=Settings().chat_config(), guarded=False)


def turn(sess: ChatSession, text: str = "What is 2+2?", *, max_tokens: int = 64, cancel=None, **kw) -> list:
    req = TurnRequest(text, language=None, params=GenParams(max_tokens=max_tokens), **kw)
    return list(sess.run_turn(req, cancel))


def result(events):
    return [e.result for e in events if isinstance(e, TurnFinished)][-1]


def only_turn(audit) -> dict:
    rows = audit.list_turns(limit=5)
    assert len(rows) == 1
    return audit.get_turn(rows[0]["id"])


# -- shapes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["vllm", "vllm-new", "llama-server", "ollama", "inline", "inline-open"])
def test_every_server_shape_gives_the_same_thinking_and_answer(server, audit, shape):
    server.scenario = Scenario(shape=shape)
    sess = session(backend(server.url), audit)
    res = result(turn(sess))
    assert (res.thinking, res.answer_raw, res.finish_reason) == ("Let me think about it.", "The answer is 4.", "stop")
    row = only_turn(audit)
    assert row["status"] == "done"
    assert row["model"]["backend"] == "openai" and row["model"]["model_id"] == MODEL
    assert row["model"]["endpoint"] == server.url
    assert row["model_name"] == MODEL
    assert row["raw_output"].startswith("<think>" if shape != "inline" else "Let me")
    assert audit.verify().ok
    if shape == "ollama":
        assert row["model"]["digest"].startswith("sha256:0123abcd")


def test_the_r1_recipe_is_applied_to_the_messages(server, audit):
    sess = session(backend(server.url), audit)
    sess.config = Settings().chat_config().__class__(preamble="Be safe.")
    history = [Message("user", "Hi"), Message("assistant", "<think>secret reasoning</think>Hello!")]
    turn(sess, "What is 2+2?", history=history, template="math")
    body = server.requests[-1]["body"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]      # no system turn for R1
    assert body["messages"][1]["content"] == "Hello!"                                 # thinking never re-sent
    last = body["messages"][-1]["content"]
    assert last.startswith("Be safe.") and "\\boxed{}" in last                        # folded into the user turn
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.6, 0.95, 64)
    assert body["stream"] is True


def test_a_model_without_the_r1_card_gets_a_system_turn(server):
    b = backend(server.url, model="other-model")
    built = b.build_prompt(PromptRequest("hi", preamble="Be safe."), max_tokens=10)
    assert built.messages[0] == {"role": "system", "content": "Be safe."} and not built.starts_in_thinking
    assert backend(server.url, model="other-model", r1_recipe="on").build_prompt(
        PromptRequest("hi", preamble="Be safe."), max_tokens=10).messages[0]["role"] == "user"


@pytest.mark.parametrize("model", ["deepseek-r1-0528-qwen3-8b", "DeepSeek-R1-0528-Qwen3-8B-GGUF:Q4_K_M",
                                   "unsloth/DeepSeek-R1-Distill-Qwen3-8B"])
def test_r1_0528_on_a_server_gets_its_own_recipe(server, model):
    """Issue 14 item 8 for servers: R1-0528 takes a system prompt and opens <think> itself (its model card);
    the first distills fold everything into the user turn and start in thinking."""
    other = FakeOpenAIServer(Scenario(model_id=model))
    try:
        b = backend(other.url, model=model)
        built = b.build_prompt(PromptRequest("hi", preamble="Be safe."), max_tokens=10)
        assert built.messages[0] == {"role": "system", "content": "Be safe."} and not built.starts_in_thinking
        assert b.describe().details["recipe"] == "r1-0528" and b.describe().is_r1
    finally:
        other.close()
    first = backend(server.url).build_prompt(PromptRequest("hi", preamble="Be safe."), max_tokens=10)
    assert [m["role"] for m in first.messages] == ["user"] and first.starts_in_thinking
    assert backend(server.url).describe().details["recipe"] == "r1"


def test_settings_a_server_ignores_are_reported_and_known_ones_sent(server):
    server.scenario = Scenario(shape="vllm")
    b = backend(server.url)
    assert b.ignored_notice() is None
    list(b.stream(b.build_prompt(PromptRequest("hi"), max_tokens=8), GenParams(max_tokens=8, seed=3), threading.Event()))
    body = server.requests[-1]["body"]
    assert (body["top_k"], body["min_p"], body["repetition_penalty"], body["seed"]) == (40, 0.05, 1.0, 3)
    server.scenario = Scenario(shape="ollama")
    b = backend(server.url)
    assert "top_k, min_p, repeat_penalty" in b.ignored_notice()
    assert b.describe().to_dict()["settings_ignored"] == ["top_k", "min_p", "repeat_penalty"]


def test_a_non_streamed_json_reply_is_read_too(server, audit):
    server.scenario = Scenario(fault="json")
    res = result(turn(session(backend(server.url), audit)))
    assert (res.thinking, res.answer_raw) == ("Let me think about it.", "The answer is 4.")


def test_comment_and_unknown_lines_are_skipped(server, audit):
    server.scenario = Scenario(fault="garbage")
    assert result(turn(session(backend(server.url), audit))).answer_raw == "The answer is 4."


def test_credentials_in_the_url_are_used_but_never_recorded(server, audit):
    url = server.url.replace("http://", "http://user:s3cr3t-key@")
    sess = session(backend(url), audit)
    turn(sess)
    assert server.requests[-1]["auth"] == "Bearer s3cr3t-key"
    assert only_turn(audit)["model"]["endpoint"] == server.url
    audit.close()
    for path in audit.path.parent.rglob("*"):      # the database, its WAL, the profile and its log
        if path.is_file():
            assert b"s3cr3t-key" not in path.read_bytes(), path


# -- failures when connecting -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case,kind,words", [
    ("down", "down", "connection was refused"),
    ("dns", "dns", "does not resolve"),
    ("tls", "tls", "TLS handshake"),
    ("401", "auth", "refused access (HTTP 401)"),
    ("403", "auth", "refused access (HTTP 403)"),
    ("404", "not_found", "has no model 'no-such-model'"),
    ("429", "rate_limited", "retry after 7 s"),
    ("500", "server", "failed (HTTP 500)"),
    ("503", "server", "failed (HTTP 503): model is loading"),
])
def test_each_connection_failure_is_one_plain_message(server, case, kind, words):
    url, model = server.url, MODEL
    if case == "down":
        url = f"http://127.0.0.1:{free_port()}"
    elif case == "dns":
        url = "http://r1desk-test.invalid:8080"
    elif case == "tls":
        url = server.url.replace("http://", "https://")
    elif case == "404":
        model = "no-such-model"
    else:
        server.scenario = Scenario(models_status=int(case), retry_after="7" if case == "429" else None)
    with pytest.raises(RemoteError) as info:
        backend(url, model=model, connect_timeout_s=5)
    assert info.value.kind == kind
    assert words in str(info.value)
    assert "\n" not in str(info.value)


# -- failures mid-turn: logged with their status -----------------------------------------------------------
@pytest.mark.parametrize("fault,kind,words", [
    ("cut", "cut", "ended the stream mid-answer"),
    ("malformed", "protocol", "malformed event"),
    ("overlong", "overlong", "more than max_tokens"),
    ("status429", "rate_limited", "retry after 3 s"),
    ("status500", "server", "HTTP 500"),
])
def test_a_failure_mid_turn_raises_one_message_and_logs_the_partial_turn(server, audit, fault, kind, words):
    b = backend(server.url)
    if fault.startswith("status"):
        server.scenario = Scenario(status=int(fault[6:]), retry_after="3")
    else:
        server.scenario = Scenario(fault=fault, thinking=["one. ", "two. ", "three. ", "four. "], repeat=6400)
    sess = session(b, audit)
    events: list = []
    with pytest.raises(RemoteError) as info:
        for event in sess.run_turn(TurnRequest("hi", language=None, params=GenParams(max_tokens=64))):
            events.append(event)
    assert info.value.kind == kind and words in str(info.value)
    assert any(isinstance(e, TurnStarted) for e in events)
    row = only_turn(audit)
    assert row["status"] == "error"
    assert row["notices"] and words in row["notices"][0]["message"]
    if fault in ("cut", "malformed"):
        assert row["thinking"].startswith("one.")          # the partial text is kept
    if fault == "overlong":
        assert len(server.requests) == 2 and 0 < row["answer"].count("word") < 200
    assert audit.verify().ok


def test_a_reasoning_field_that_never_closes_is_unfinished_thinking(server, audit):
    server.scenario = Scenario(fault="never_closes", repeat=30)
    events = turn(session(backend(server.url), audit), max_tokens=30)
    res = result(events)
    assert res.unfinished_thinking and res.answer_raw == "" and res.finish_reason == "length"
    assert any(isinstance(e, Notice) and e.kind == "unfinished_thinking" for e in events)
    assert only_turn(audit)["status"] == "done"


def test_a_reasoning_field_that_runs_past_max_tokens_is_stopped(server, audit):
    server.scenario = Scenario(fault="never_closes", repeat=3000)
    with pytest.raises(RemoteError, match="more than max_tokens"):
        turn(session(backend(server.url), audit), max_tokens=30)
    assert only_turn(audit)["status"] == "error"


def test_a_silent_server_times_out(server, audit):
    server.scenario = Scenario(fault="stall", stall_after=1)
    with pytest.raises(RemoteError, match="stopped sending for 0.5 s") as info:
        turn(session(backend(server.url, read_timeout_s=0.5), audit))
    assert info.value.kind == "timeout"
    assert only_turn(audit)["status"] == "error"


# -- Stop -----------------------------------------------------------------------------------------------------
def test_stop_ends_a_stalled_stream_at_once_and_logs_the_turn_cancelled(server, audit):
    server.scenario = Scenario(fault="stall", stall_after=2)
    sess = session(backend(server.url), audit)
    cancel = threading.Event()
    out: dict = {}

    def run() -> None:
        out["events"] = turn(sess, cancel=cancel)

    worker = threading.Thread(target=run)
    worker.start()
    assert server.stalled.wait(TURN_TIMEOUT_S)
    cancel.set()
    worker.join(3.0)                          # the server is still silent: only the abort can end the read
    assert not worker.is_alive()
    res = result(out["events"])
    assert res.finish_reason == "cancelled" and res.thinking.startswith("Let me think")
    assert only_turn(audit)["status"] == "cancelled"


def test_a_linked_event_reads_its_parent():
    parent = threading.Event()
    stop = LinkedEvent(parent)
    assert not stop.wait(0.01)
    parent.set()
    assert stop.is_set() and stop.wait(0.01)
