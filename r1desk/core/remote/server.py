"""What a server says about itself: its models (``/v1/models``), which server it is, what it honours.

Servers differ in what they report and accept. vLLM reports ``max_model_len``; llama-server (llama.cpp)
reports ``meta.n_ctx_train`` and ``owned_by: "llamacpp"``; llama-cpp-python's server ``owned_by: "me"``;
Ollama ``owned_by: "library"`` (or the model's namespace) and a digest on its native ``/api/tags``. The
sampling settings beyond OpenAI's (top_k, min_p, repeat penalty) are sent only to servers known to honour
them, under the name each one reads; for the others they are *reported* as ignored, never assumed applied.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from r1desk.core.remote.http import Endpoint, RemoteError, Timeouts, request

log = logging.getLogger("r1desk.remote")

MAX_MODELS = 1000                     # entries read from a /v1/models listing
SERVER_TYPES = ("auto", "llama-server", "llama-cpp-python", "vllm", "ollama", "lmstudio", "openai")

# GenParams field -> the request key each server honours (absent: not sent, reported as ignored).
_EXTRA_PARAMS: dict[str, dict[str, str]] = {
    "llama-server": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "llama-cpp-python": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "lmstudio": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "ollama": {},
    "openai": {},
}
EXTRA_SETTINGS = ("top_k", "min_p", "repeat_penalty")
_TITLES = {"llama-server": "llama.cpp server", "llama-cpp-python": "llama-cpp-python server", "vllm": "vLLM",
           "ollama": "Ollama", "lmstudio": "LM Studio", "openai": "OpenAI-compatible server"}

_R1_RE = re.compile(r"deepseek[-_ ]?r1|r1[-_ ]?distill|(?:^|[/:_.\-])r1(?:$|[/:_.\-])", re.I)


@dataclass(frozen=True)
class ServerModel:
    """One entry of a server's model list."""

    id: str
    owned_by: str | None = None
    context_length: int | None = None      # what the server serves with, where it says
    trained_context: int | None = None     # the model's training context (llama-server's n_ctx_train)
    digest: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def looks_r1(self) -> bool:
        """A DeepSeek-R1 model by its id (a server gives no tokenizer to inspect)."""
        return bool(_R1_RE.search(self.id))


@dataclass(frozen=True)
class ServerInfo:
    endpoint: Endpoint
    server_type: str                       # one of SERVER_TYPES but "auto"
    models: tuple[ServerModel, ...]

    @property
    def title(self) -> str:
        return _TITLES.get(self.server_type, self.server_type)

    def find(self, model_id: str) -> ServerModel | None:
        for m in self.models:
            if m.id == model_id:
                return m
        return None


def extra_params(server_type: str) -> dict[str, str]:
    return dict(_EXTRA_PARAMS.get(server_type, {}))


def ignored_settings(server_type: str) -> list[str]:
    """Generation settings r1desk has but does not send to this server (its own defaults apply)."""
    sent = _EXTRA_PARAMS.get(server_type, {})
    return [name for name in EXTRA_SETTINGS if name not in sent]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _parse_model(entry: Any) -> ServerModel | None:
    if not isinstance(entry, dict):
        return None
    model_id = entry.get("id") or entry.get("name") or entry.get("model")
    if not isinstance(model_id, str) or not model_id:
        return None
    raw_meta = entry.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    ctx = _int(entry.get("max_model_len")) or _int(entry.get("context_length")) or _int(meta.get("n_ctx"))
    digest = entry.get("digest") if isinstance(entry.get("digest"), str) else None
    details = {k: v for k, v in meta.items() if isinstance(v, (int, float, str)) and k in
               ("n_params", "size", "n_vocab", "n_ctx_train")}
    owned = entry.get("owned_by") if isinstance(entry.get("owned_by"), str) else None
    return ServerModel(model_id[:500], owned, ctx, _int(meta.get("n_ctx_train")), digest, details)


def detect_server_type(models: list[ServerModel], headers: Any) -> str:
    server = (headers.get("Server") or "").lower() if headers is not None else ""
    owners = {m.owned_by for m in models}
    if "llama.cpp" in server or "llamacpp" in owners:
        return "llama-server"
    if "vllm" in owners:
        return "vllm"
    if "me" in owners:
        return "llama-cpp-python"
    if "library" in owners or "ollama" in server:
        return "ollama"
    if "organization_owner" in owners:
        return "lmstudio"
    return "openai"


def list_models(endpoint: Endpoint, *, api_key: str | None, verify_tls: bool, timeouts: Timeouts,
                server_type: str = "auto") -> ServerInfo:
    """GET /v1/models (and, for Ollama, the digests from /api/tags)."""
    resp = request(endpoint, "GET", "/v1/models", api_key=api_key, verify_tls=verify_tls, timeouts=timeouts)
    try:
        data = resp.json()
    finally:
        resp.close()
    entries = data.get("data", data.get("models")) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise RemoteError(f"the server at {endpoint.url} answered /v1/models without a model list",
                          kind="protocol", hint="is this an OpenAI-compatible server?")
    models = [m for m in (_parse_model(e) for e in entries[:MAX_MODELS]) if m is not None]
    kind = server_type if server_type != "auto" else detect_server_type(models, resp.headers)
    if kind == "ollama" and not any(m.digest for m in models):
        models = _ollama_digests(endpoint, models, api_key=api_key, verify_tls=verify_tls, timeouts=timeouts)
    return ServerInfo(endpoint, kind, tuple(models))


def _ollama_digests(endpoint: Endpoint, models: list[ServerModel], **kw: Any) -> list[ServerModel]:
    """Ollama's native /api/tags carries each model's digest; best effort (the listing stands without it)."""
    try:
        resp = request(endpoint, "GET", "/api/tags", **kw)
        try:
            data = resp.json()
        finally:
            resp.close()
    except RemoteError as exc:
        log.info("no digests from %s/api/tags: %s", endpoint.url, exc)
        return models
    digests: dict[str, str] = {}
    for entry in (data.get("models") if isinstance(data, dict) else None) or []:
        if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
            for key in ("name", "model"):
                if isinstance(entry.get(key), str):
                    digests[entry[key]] = entry["digest"]
    from dataclasses import replace

    return [replace(m, digest=digests.get(m.id, m.digest)) for m in models]
