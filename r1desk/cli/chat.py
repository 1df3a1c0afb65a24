"""`r1desk chat`: one guarded, audited turn from the terminal, through the same code path as the GUI."""
from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from r1desk.errors import UserFacingError
from r1desk.textsafe import safe_json

if TYPE_CHECKING:   # the CLI imports its heavy parts when a command runs (fast --help)
    from r1desk.core.chat import ChatSession
    from r1desk.core.events import TurnResult
    from r1desk.settings import Settings

EXIT_BLOCKED = 3

_DIM, _RESET, _YELLOW, _RED = "\033[2m", "\033[0m", "\033[33m", "\033[31m"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "chat", help="run one guarded chat turn and print the thinking and the answer",
        description="Run one chat turn through the guarded pipeline (prompt check, thinking/answer "
        "moderation, language lock) and log it to the audit database. Exit code 3 when the turn "
        "was blocked.")
    p.add_argument("--model", "-m", help="GGUF file (default: the last model used in the app); with --server, "
                                          "the server's model id")
    add_server_arguments(p)
    p.add_argument("--prompt", "-p", required=True, help="the user message; '-' reads it from stdin")
    p.add_argument("--template", "-t", default=None,
                   help="prompt template: plain, step_by_step, math, json, table (default: settings)")
    p.add_argument("--language", "-l", default=None,
                   help="output language: auto (the prompt's), a code such as en or fr, or off")
    # Numbers are parsed by check_flags, so a bad one gets the settings' one-line message.
    p.add_argument("--max-tokens", default=None, help="most new tokens (thinking + answer)")
    p.add_argument("--temperature", default=None, help="sampling temperature, 0-2")
    p.add_argument("--top-p", default=None, help="nucleus sampling cut-off, 0-1")
    p.add_argument("--seed", default=None, help="random seed (-1: a new one each turn)")
    p.add_argument("--n-ctx", default=None, help="context size in tokens")
    p.add_argument("--gpu-layers", default=None, help="none, all, auto or a number of layers")
    p.add_argument("--conversation", default=None, help="continue this conversation id")
    p.add_argument("--db", type=Path, default=None, help="audit database (default: the user data dir)")
    p.add_argument("--no-guard", action="store_true",
                   help="score nothing (the turn is still logged, marked unguarded)")
    p.add_argument("--hide-thinking", action="store_true", help="do not print the thinking trace")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    p.set_defaults(func=run)


def decode_prompt(raw: bytes) -> tuple[str, int]:
    """(text, number of invalid UTF-8 sequences replaced by U+FFFD)."""
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return text, max(text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd"), 1)


def _read_prompt(value: str) -> str:
    # stdin as bytes, argv back to its bytes (Python keeps invalid UTF-8 there as lone surrogates):
    # invalid UTF-8 is replaced, and said, rather than crashing the guard or the engine later.
    if value == "-":
        buffer = getattr(sys.stdin, "buffer", None)     # a text-only stdin (a test's StringIO) has none
        raw = buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    else:
        raw = os.fsencode(value)
    text, bad = decode_prompt(raw)
    if bad:
        where = "standard input" if value == "-" else "--prompt"
        print(f"r1desk: notice: the prompt from {where} is not valid UTF-8; {bad} invalid byte "
              f"sequence{'s were' if bad != 1 else ' was'} replaced with U+FFFD (\ufffd)", file=sys.stderr)
    if not text.strip():
        raise UserFacingError("the prompt is empty")
    return text


_FLAG_SETTINGS = {"temperature": "--temperature", "top_p": "--top-p", "max_tokens": "--max-tokens",
                  "seed": "--seed", "n_ctx": "--n-ctx", "gpu_layers": "--gpu-layers"}


_INT_FLAGS = frozenset({"max_tokens", "seed", "n_ctx"})


def _number(text: object, *, integer: bool) -> object:
    """A flag's number as typed ("0.6", "1e20", "nan"); left as text when it is none (the validator says so)."""
    if not isinstance(text, str) or text in ("none", "all", "auto"):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if integer and value.is_integer():
        return int(value)
    return value


def check_flags(args: argparse.Namespace) -> None:
    """Generation flags go through the settings' validator (same ranges, same messages)."""
    from r1desk.errors import SettingsError
    from r1desk.settings import Settings, quote_value, settings_from_dict

    given = {key: getattr(args, key) if key == "gpu_layers" else _number(getattr(args, key), integer=key in _INT_FLAGS)
             for key in _FLAG_SETTINGS if getattr(args, key) is not None}
    for key, value in given.items():
        setattr(args, key, value)
    if not given:
        return
    data = Settings().to_dict()
    data["generation"].update(given)
    try:
        settings_from_dict(data, path="command line")
    except SettingsError as exc:
        key = (exc.key or "").removeprefix("generation.")
        why = str(exc).rsplit(": ", 1)[-1]
        flag = _FLAG_SETTINGS.get(key, key)
        raise UserFacingError(f"{flag} {quote_value(exc.value)}: {why}") from None


def run(args: argparse.Namespace) -> int:
    from r1desk.core.chat import ChatSession, TurnRequest
    from r1desk.core.events import (LENGTH_NOTICE_KINDS, Blocked, Delta, GuardDecision, Notice, PromptBlocked,
                                    Redacted, TurnFinished)

    check_flags(args)
    prompt = _read_prompt(args.prompt)
    from r1desk.settings import SettingsStore

    store = SettingsStore()             # its problems are said before a model error can hide them
    for problem in store.problems:
        print(f"r1desk: warning: settings not applied, using the last valid ones: {problem}", file=sys.stderr)
    session: ChatSession = open_session(store.current, model=args.model, db=args.db, n_ctx=args.n_ctx,
                                        gpu_layers=args.gpu_layers, guarded=not args.no_guard,
                                        server=server_options(args, store.current))
    request = TurnRequest(
        user_text=prompt, conversation_id=args.conversation, template=args.template,
        language=None if args.language == "off" else (args.language or "auto"),
        params=session.generation_params(max_tokens=args.max_tokens, temperature=args.temperature,
                                         top_p=args.top_p, seed=args.seed))
    if args.conversation:
        request.history = session.history(args.conversation)
    out: TextIO = sys.stdout
    color = out.isatty()
    cancel = threading.Event()
    channel_open: str | None = None
    result = None
    notices: list[dict[str, str]] = []
    ignored = _ignored_settings_notice(session)
    if ignored:
        notices.append({"kind": "settings_ignored", "message": ignored})
        if not args.json:
            print(f"{_YELLOW if color else ''}[notice] {ignored}{_RESET if color else ''}", file=sys.stderr)
    screen = _Screen()
    try:
        for event in session.run_turn(request, cancel):
            if isinstance(event, Delta) and not args.json:
                if event.channel == "thinking" and args.hide_thinking:
                    continue
                if event.channel != channel_open:
                    if channel_open is not None:
                        out.write(_RESET if color else "")
                        out.write("\n")
                    header = "[thinking]" if event.channel == "thinking" else "[answer]"
                    out.write((_DIM if color and event.channel == "thinking" else "") + header + "\n")
                    channel_open = event.channel
                out.write(screen.shown(event.channel, event.text))
                out.flush()
            elif isinstance(event, Notice):
                notices.append({"kind": event.kind, "message": event.message})
                if not args.json:
                    message = event.message
                    if event.kind in LENGTH_NOTICE_KINDS:     # the app's Continue button is not here
                        message = message.replace("Continue lets it finish.", "Ask again with a higher --max-tokens.")
                    print(f"{_YELLOW if color else ''}[notice] {message}{_RESET if color else ''}",
                          file=sys.stderr)
            elif isinstance(event, GuardDecision) and not args.json:
                d = event.decision
                print(f"\n[guard] {d.channel}: {d.action} ({d.label} {d.score:.2f} ≥ {d.threshold:.2f})",
                      file=sys.stderr)
            elif isinstance(event, (Redacted, Blocked)) and not args.json:
                if isinstance(event, Redacted):
                    screen.redactions.setdefault(event.channel, []).append((event.start, event.end, event.notice))
                print(f"{_RED if color else ''}\n[guard] {event.notice}{_RESET if color else ''}",
                      file=sys.stderr)
            elif isinstance(event, PromptBlocked) and not args.json:
                print(f"[blocked] {event.message}", file=sys.stderr)
            elif isinstance(event, TurnFinished):
                result = event.result
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        close_problem = session.close()
        if close_problem:
            print(f"r1desk: warning: {close_problem}", file=sys.stderr)
    if not args.json and channel_open is not None:
        out.write((_RESET if color else "") + "\n")
    if result is None:                      # pragma: no cover - run_turn always finishes
        raise UserFacingError("the turn ended without a result")
    if args.json:
        print(safe_json(result_json(session, result, notices)))
    else:
        usage = result.usage or {}
        rate = usage.get("decode_tokens_per_s")
        tail = f", {rate:.1f} tok/s" if rate else ""
        print(f"[turn {result.turn_id}] {result.finish_reason}, "
              f"{usage.get('completion_tokens', 0)} tokens{tail}", file=sys.stderr)
    return EXIT_BLOCKED if result.blocked else 0



def open_session(settings: Settings, *, model: str | None, db: Path | None, n_ctx: int | None,
                 gpu_layers: str | None, guarded: bool, server: dict[str, Any] | None = None) -> ChatSession:
    """The model, the audit log and a chat session built from ``settings`` (the GUI does this in steps).
    ``server``: the remote server's options (``server_options``) to chat through instead of a local file."""
    from r1desk.core.backend import open_backend
    from r1desk.core.chat import ChatSession
    from r1desk.storage.auditlog import AuditLog

    config = settings.chat_config()
    if server is not None:
        model_id = model or settings.remote.model
        if not model_id:
            raise UserFacingError("no model given for the server",
                                  hint=f"pass --model ID; list them with: r1desk models list --server {server['url']}")
        backend_config = settings.remote.backend_config(config.generation, url=server["url"], model=model_id,
                                                        api_key=server.get("api_key"))
        backend_config.options.update(verify_tls=server["verify_tls"])
        if n_ctx:
            backend_config = replace(backend_config, n_ctx=n_ctx)
        backend = open_remote_asking(backend_config, asked=server.get("api_key") is not None)
    else:
        path = model or settings.last_model_path
        if not path:
            raise UserFacingError("no model given", hint="pass --model PATH to a GGUF file")
        backend = open_backend(config.generation.backend_config(path, n_ctx=n_ctx, gpu_layers=gpu_layers))
    return ChatSession(backend, audit=AuditLog(db), config=config, guarded=guarded)


# -- the remote server flags (shared with `r1desk models list --server`) ---------------------------------
API_KEY_ENV = "R1DESK_API_KEY"


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", default=None,
                   help="an OpenAI-compatible server (llama-server, vLLM, Ollama) to use instead of a local file, "
                        "e.g. http://127.0.0.1:8080")
    p.add_argument("--ask-key", action="store_true",
                   help="ask for the server's API key (not stored); otherwise $R1DESK_API_KEY or the key kept "
                        "in the credential store (r1desk models key --server URL)")
    p.add_argument("--no-verify-tls", action="store_true",
                   help="do not check the server's TLS certificate (only for a server you trust)")


def server_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    """The server flags as options for the remote backend (None: no --server, a local model)."""
    if not args.server:
        return None
    from r1desk.core.remote.credentials import Secret

    key = None
    if args.ask_key:
        import getpass

        key = getpass.getpass(f"API key for {args.server} (not stored): ") or None
    elif os.environ.get(API_KEY_ENV):
        key = os.environ[API_KEY_ENV]
    return {"url": args.server, "api_key": Secret(key) if key else None,
            "verify_tls": settings.remote.verify_tls and not args.no_verify_tls}


def auth_hint(url: str) -> str:
    from r1desk.core.remote.credentials import store_available, unavailable_message

    if store_available():
        return f"store the key with: r1desk models key --server {url} (or pass --ask-key)"
    return unavailable_message() + "; pass --ask-key or set $" + API_KEY_ENV


def open_remote_asking(config: Any, *, asked: bool) -> Any:
    """Open the server's model; when it refuses access and no key was given, ask once on a terminal."""
    from r1desk.core.backend import open_backend
    from r1desk.core.remote import RemoteError
    from r1desk.core.remote.credentials import Secret

    try:
        return open_backend(config)
    except RemoteError as exc:
        if exc.kind != "auth":
            raise
        if asked or not sys.stdin.isatty():
            raise RemoteError(exc.message, kind="auth", status=exc.status,
                              hint=auth_hint(config.options["url"])) from None
        refused = exc.message                      # ``exc`` is unbound once the except block ends
    import getpass

    key = getpass.getpass(f"{refused}\nAPI key for {config.options['url']} (not stored): ")
    return open_backend(replace(config, options={**config.options, "api_key": Secret(key)}))


def _ignored_settings_notice(session: ChatSession) -> str | None:
    from r1desk.core.remote import RemoteBackend

    return session.engine.ignored_notice() if isinstance(session.engine, RemoteBackend) else None


class _Screen:
    """What the terminal shows of each channel: the released text with redacted spans replaced by their
    notice (the guard hands out a redaction before the text it covers: core.holdback)."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}
        self.redactions: dict[str, list[tuple[int, int, str]]] = {}

    def shown(self, channel: str, text: str) -> str:
        start = self.offsets.get(channel, 0)
        self.offsets[channel] = start + len(text)
        out: list[str] = []
        for i, ch in enumerate(text, start):
            hit = next((r for r in self.redactions.get(channel, ()) if r[0] <= i < r[1]), None)
            if hit is None:
                out.append(ch)
            elif i == hit[0] or i == start:
                out.append(hit[2])
        return "".join(out)


def result_json(session: ChatSession, result: TurnResult, notices: list[dict[str, str]]) -> dict[str, Any]:
    """The `r1desk chat --json` object (``notices``: what the turn said along the way)."""
    from r1desk.core.gguf_info import file_sha256
    from r1desk.core.turn_log import as_dict, turn_result_dict

    data = turn_result_dict(result)
    model = {k: v for k, v in result.model.items() if k != "chat_template"}   # `models info --template`
    if model.get("backend") == "llama.cpp" and not model.get("sha256"):       # the file this answer came from
        model["sha256"] = model["digest"] = file_sha256(model["model_id"])
    return {
        "turn_id": result.turn_id, "conversation_id": result.conversation_id, "model": model,
        "thinking": result.thinking, "answer": result.answer_shown, "answer_raw": result.answer_raw,
        "finish_reason": result.finish_reason, "unfinished_thinking": result.unfinished_thinking,
        "blocked": result.blocked, "usage": data["usage"], "timings": data["timings"],
        "settings": result.settings, "decisions": data["decisions"], "language": result.language,
        "guard": as_dict(session.guard.status), "notices": list(notices),
        "segment_scores": session.guard.last_segment_scores(),
    }
