"""Remote inference: an OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) as a backend.

Registers the "openai" opener in ``core.backend.OPENERS`` on import (``open_backend`` imports this
package when asked for that kind). Modules: ``http`` (the client, its errors and timeouts), ``server``
(model listing, which server it is, what it honours), ``messages`` (the R1 recipe as chat messages),
``stream`` (SSE parsing, reasoning fields to one ``<think>`` text, cancellation), ``backend``
(``RemoteBackend``), ``credentials`` (API keys in the OS credential store).
"""
from __future__ import annotations

from r1desk.core.backend import register_backend
from r1desk.core.remote.backend import KIND, RemoteBackend, RemoteOptions, open_remote, probe
from r1desk.core.remote.http import RemoteError, parse_endpoint, redact_url
from r1desk.core.remote.server import ServerInfo, ServerModel

register_backend(KIND, open_remote)

__all__ = ["KIND", "RemoteBackend", "RemoteError", "RemoteOptions", "ServerInfo", "ServerModel", "open_remote",
           "parse_endpoint", "probe", "redact_url"]
