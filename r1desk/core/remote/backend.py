"""``RemoteBackend``: an OpenAI-compatible server as a ``core.backend.InferenceBackend`` (kind "openai").

Opening one lists the server's models (which checks the URL, TLS and the key at once) and picks the
configured model id; the chat core then uses it exactly like the local engine. The recipe, the splitter,
the guard and the audit log stay on this computer. Model identity for the audit log: ("openai", model id,
the server's digest where it reports one, the base URL without credentials).
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from r1desk.core.backend import BackendConfig, ModelDescription, ModelIdentity
from r1desk.core.engine import GenParams
from r1desk.core.prompts import BuiltPrompt, PromptRequest, recipe_for_name
from r1desk.core.remote import credentials
from r1desk.core.remote.http import Endpoint, RemoteError, Timeouts, parse_endpoint
from r1desk.core.remote.messages import build_messages
from r1desk.core.remote.server import (ServerInfo, ServerModel, extra_params, ignored_settings, list_models)
from r1desk.core.remote.stream import RemoteStream

log = logging.getLogger("r1desk.remote")

KIND = "openai"
BYTES_PER_TOKEN_ESTIMATE = 3          # a conservative estimate (English ~4 bytes/token, CJK ~3)
_STREAM_OPTIONS_SERVERS = frozenset({"llama-server", "vllm", "ollama", "openai", "llama-cpp-python"})


@dataclass(frozen=True)
class RemoteOptions:
    """``BackendConfig.options`` for kind "openai" (built by the settings layer or the CLI)."""

    url: str
    verify_tls: bool = True
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    server_type: str = "auto"
    r1_recipe: str = "auto"           # auto (by the model id) | on | off
    api_key: str | None = None        # transient (asked for, or read from the credential store)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RemoteOptions:
        url = options.get("url")
        if not isinstance(url, str) or not url.strip():
            raise RemoteError("no server URL given", kind="bad_url",
                              hint="pass --server URL, or set it in the model manager's Remote server section")
        known = {k: options[k] for k in ("verify_tls", "connect_timeout_s", "read_timeout_s", "server_type",
                                         "r1_recipe", "api_key") if options.get(k) is not None}
        return cls(url=url.strip(), **known)

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(connect_s=float(self.connect_timeout_s), read_s=float(self.read_timeout_s))


def resolve_api_key(endpoint: Endpoint, given: str | None) -> str | None:
    """The key given (asked for this session), else the URL's own, else the credential store's."""
    if given:
        return given
    if endpoint.url_key:
        return endpoint.url_key
    return credentials.get_api_key(endpoint.url)


def probe(options: RemoteOptions) -> ServerInfo:
    """List a server's models (``r1desk models list --server``, the model manager's Refresh)."""
    endpoint = parse_endpoint(options.url)
    return list_models(endpoint, api_key=resolve_api_key(endpoint, options.api_key), verify_tls=options.verify_tls,
                       timeouts=options.timeouts, server_type=options.server_type)


class RemoteBackend:
    """One model on one server. Stateless between turns: "unload" only forgets the server."""

    kind = KIND

    def __init__(self, info: ServerInfo, model: ServerModel, options: RemoteOptions, *, n_ctx: int,
                 api_key: str | None) -> None:
        self.info = info
        self.endpoint = info.endpoint
        self.model = model
        self.options = options
        self.api_key = api_key
        self.verify_tls = options.verify_tls
        self.timeouts = options.timeouts
        self.server_type = info.server_type
        self.extra_params = extra_params(info.server_type)
        self.sends_stream_options = info.server_type in _STREAM_OPTIONS_SERVERS
        self.ignored = ignored_settings(info.server_type)
        self.is_r1 = {"on": True, "off": False}.get(options.r1_recipe, model.looks_r1)
        self.recipe = recipe_for_name(model.id, is_r1=self.is_r1)     # R1-0528 by its id, as a file by its name
        self._n_ctx = n_ctx
        self._loaded = True
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def describe(self) -> ModelDescription:
        if not self._loaded:
            raise RuntimeError("no model is loaded")
        m = self.model
        details: dict[str, Any] = {"server": self.info.title, "server_type": self.server_type,
                                   "owned_by": m.owned_by, "tls_verified": self.endpoint.scheme == "https"
                                   and self.verify_tls, "settings_ignored": list(self.ignored),
                                   "r1_recipe": self.is_r1, "recipe": self.recipe.name, **m.details}
        if m.trained_context:
            details["trained_context"] = m.trained_context
        return ModelDescription(ModelIdentity(KIND, m.id, m.digest, self.endpoint.url), name=m.id, is_r1=self.is_r1,
                                context_length=m.context_length, quantization=None, details=details)

    def ignored_notice(self) -> str | None:
        """One sentence naming the generation settings this server does not receive, if any."""
        if not self.ignored:
            return None
        return (f"{self.info.title} at {self.endpoint.url} is not sent {', '.join(self.ignored)}: its own "
                f"defaults apply to them (temperature, top-p, max tokens and seed are sent)")

    def count_tokens(self, text: str) -> int:
        """An estimate (the server's tokenizer is not here): used only to fit history into the context."""
        return max(1, math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE))

    def build_prompt(self, request: PromptRequest, *, max_tokens: int) -> BuiltPrompt:
        return build_messages(request, recipe=self.recipe, count_tokens=self.count_tokens, n_ctx=self.n_ctx,
                              max_tokens=max_tokens)

    def stream(self, prompt: BuiltPrompt, params: GenParams, cancel: threading.Event) -> RemoteStream:
        if not self._loaded:
            raise RuntimeError("no model is loaded")
        if not prompt.messages:
            raise ValueError("a remote backend needs the prompt as messages (build_prompt)")
        return RemoteStream(self, prompt, params, cancel)

    def unload(self) -> None:
        self._loaded = False


def open_remote(config: BackendConfig) -> RemoteBackend:
    """The "openai" opener: list the server's models, find ``config.model`` among them."""
    options = RemoteOptions.from_options(config.options)
    endpoint = parse_endpoint(options.url)
    api_key = resolve_api_key(endpoint, options.api_key)
    info = list_models(endpoint, api_key=api_key, verify_tls=options.verify_tls, timeouts=options.timeouts,
                       server_type=options.server_type)
    model = info.find(config.model)
    if model is None:
        ids = ", ".join(m.id for m in info.models[:10]) or "none"
        raise RemoteError(f"the server at {endpoint.url} has no model {config.model!r} (it serves: {ids})",
                          kind="not_found", hint="pick one from: r1desk models list --server " + endpoint.url)
    n_ctx = model.context_length or min(model.trained_context or config.n_ctx, config.n_ctx)
    log.info("remote backend: %s at %s, model %s, n_ctx %d", info.title, endpoint.url, model.id, n_ctx)
    return RemoteBackend(info, model, options, n_ctx=n_ctx, api_key=api_key)
