"""A small HTTP/1.1 client for OpenAI-compatible servers (standard library only: http.client + ssl).

Every failure becomes one ``RemoteError`` whose message says what happened in words (the server is
down, the name does not resolve, the TLS handshake failed, the key was refused, the model is unknown,
rate limiting with its Retry-After, a server error, a stream cut mid-answer, a malformed event), so the
CLI prints one line (exit 2) and the app one dialog. Timeouts: ``connect_timeout_s`` for the TCP/TLS
handshake, ``read_timeout_s`` for any wait between two bytes (a server that stalls mid-stream). Bodies
and lines are size-capped: a server is foreign input. TLS certificates are verified unless the user
switched verification off for this server.

``Response.abort()`` (from any thread) shuts the socket down, so a read blocked on a slow server returns
at once: that is how Stop ends an HTTP stream without waiting for the next token.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.remote")

MAX_BODY_BYTES = 8 * 1024 * 1024      # a /v1/models listing or an error body
MAX_LINE_BYTES = 1024 * 1024          # one SSE line (one token's event is ~200 bytes)
ERROR_SNIPPET_CHARS = 300


class RemoteError(UserFacingError):
    """A server could not be used. ``kind``: down, dns, tls, timeout, auth, not_found, rate_limited,
    server, protocol, cut, overlong, bad_url, cancelled."""

    def __init__(self, message: str, *, kind: str, hint: str | None = None, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Endpoint:
    """A server's base URL, split; ``url`` never carries credentials or a query string."""

    scheme: str
    host: str
    port: int
    base_path: str                    # "" or "/v1"-like prefix without a trailing slash
    url_key: str | None = None        # a key given in the URL (user:KEY@host), used once, never shown

    @property
    def url(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.base_path}"

    def path(self, tail: str) -> str:
        """``tail`` ("/v1/models") under the base path; a base URL that already ends in /v1 is not doubled."""
        base = self.base_path
        if base.endswith("/v1") and tail.startswith("/v1/"):
            base = base[:-3]
        return base + tail


def parse_endpoint(url: str) -> Endpoint:
    """Validate a base URL ("http://127.0.0.1:8080", "https://gpu.example.org/v1")."""
    text = (url or "").strip()
    if not text:
        raise RemoteError("no server URL given", kind="bad_url", hint="e.g. http://127.0.0.1:8080")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise RemoteError(f"not a server URL: {redact_url(url)!r} ({exc})", kind="bad_url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RemoteError(f"the server URL must start with http:// or https://, not {scheme}://", kind="bad_url")
    if not parts.hostname:
        raise RemoteError(f"the server URL {redact_url(url)!r} names no host", kind="bad_url")
    key = unquote(parts.password or parts.username or "") or None
    return Endpoint(scheme, parts.hostname, port or (443 if scheme == "https" else 80),
                    parts.path.rstrip("/"), key)


def redact_url(url: str) -> str:
    """``url`` without user:password@ and without its query string (for messages and the log)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else netloc + parts.path


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 10.0
    read_s: float = 120.0


class Response:
    """An open response: status, headers, and the body read in lines (SSE) or at once (JSON)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, endpoint: Endpoint,
                 timeouts: Timeouts, sock: socket.socket | None) -> None:
        self._conn = conn
        self._resp = resp
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.status = resp.status
        self.headers = resp.headers
        self.aborted = threading.Event()
        self._sock = sock                 # kept: http.client drops conn.sock when the server will close

    def read_body(self, limit: int = MAX_BODY_BYTES) -> bytes:
        try:
            data = self._resp.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise self._read_error(exc) from None
        if len(data) > limit:
            raise RemoteError(f"the server at {self.endpoint.url} sent a reply larger than {limit // 2**20} MB",
                              kind="protocol")
        return data

    def json(self) -> Any:
        body = self.read_body()
        try:
            return json.loads(body)
        except ValueError:
            raise RemoteError(f"the server at {self.endpoint.url} did not answer with JSON: "
                              f"{snippet(body)!r}", kind="protocol",
                              hint="is this an OpenAI-compatible server (llama-server, vLLM, Ollama)?") from None

    def lines(self) -> Iterator[bytes]:
        """The body line by line (without the line end); ends at end of stream."""
        fp = self._resp
        while True:
            try:
                line = fp.readline(MAX_LINE_BYTES + 1)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if self.aborted.is_set():
                    return
                raise self._read_error(exc) from None
            if not line:
                return
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise RemoteError(f"the server at {self.endpoint.url} sent an event line longer than "
                                  f"{MAX_LINE_BYTES // 1024} KB", kind="protocol")
            yield line.rstrip(b"\r\n")

    def _read_error(self, exc: BaseException) -> RemoteError:
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return RemoteError(f"the server at {self.endpoint.url} stopped sending for "
                               f"{self.timeouts.read_s:g} s", kind="timeout",
                               hint="it may be overloaded; the read timeout is in the remote server settings")
        return RemoteError(f"the connection to {self.endpoint.url} broke while reading: {describe_exc(exc)}",
                           kind="cut")

    def abort(self) -> None:
        """End the response now, from any thread: a blocked read returns (the stream counts as cancelled)."""
        self.aborted.set()
        sock = self._sock
        if sock is not None:
            try:     # the plain socket's shutdown: SSLSocket's own would unwrap under a reading thread
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self._resp.close()
        finally:
            self._conn.close()


def describe_exc(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:ERROR_SNIPPET_CHARS]


def snippet(body: bytes | str, limit: int = ERROR_SNIPPET_CHARS) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _tls_context(verify: bool) -> ssl.SSLContext:
    if verify:
        return ssl.create_default_context()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(endpoint: Endpoint, method: str, tail: str, *, body: dict[str, Any] | None = None,
            api_key: str | None = None, verify_tls: bool = True, timeouts: Timeouts = Timeouts(),
            accept: str = "application/json") -> Response:
    """Send one request and return the open response once its status is known; an error status is
    read and raised as a RemoteError here (the caller only sees 2xx)."""
    if endpoint.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=timeouts.connect_s, context=_tls_context(verify_tls))
    else:
        conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeouts.connect_s)
    headers = {"Accept": accept, "User-Agent": "r1desk"}
    key = api_key or endpoint.url_key
    if key:
        headers["Authorization"] = f"Bearer {key}"
    payload = None
    if body is not None:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    path = quote(endpoint.path(tail), safe="/:@-._~")
    sock = None
    try:
        conn.connect()
        sock = conn.sock
        sock.settimeout(timeouts.read_s)
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
    except BaseException as exc:
        conn.close()
        if isinstance(exc, Exception):
            raise connect_error(endpoint, exc, timeouts, verify_tls) from None
        raise
    response = Response(conn, resp, endpoint, timeouts, sock)
    if resp.status >= 300:
        try:
            raise status_error(endpoint, resp.status, resp.headers, response.read_body(64 * 1024), tail)
        finally:
            response.close()
    return response


def connect_error(endpoint: Endpoint, exc: Exception, timeouts: Timeouts, verify_tls: bool) -> RemoteError:
    url = endpoint.url
    if isinstance(exc, socket.gaierror):
        return RemoteError(f"cannot find the server {endpoint.host!r}: the name does not resolve (DNS)",
                           kind="dns", hint="check the server URL and this computer's network")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RemoteError(f"the TLS certificate of {url} could not be verified: {exc.verify_message}",
                           kind="tls", hint="use the server's proper name and certificate; switch TLS "
                                            "verification off only for a server you trust")
    if isinstance(exc, ssl.SSLError):
        hint = ("the server may speak plain HTTP: try http:// instead of https://"
                if "WRONG_VERSION_NUMBER" in str(exc) or "record layer" in str(exc) else None)
        return RemoteError(f"the TLS handshake with {url} failed: {describe_exc(exc)}", kind="tls", hint=hint)
    if isinstance(exc, ConnectionRefusedError):
        return RemoteError(f"cannot reach the server at {url}: the connection was refused", kind="down",
                           hint="is the server running, and on this port?")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteError(f"the server at {url} did not answer within {timeouts.connect_s:g} s", kind="timeout",
                           hint="is the server running and reachable from this computer?")
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return RemoteError(f"the server at {url} closed the connection without answering", kind="down",
                           hint="if it serves HTTPS, use https:// in the URL")
    if isinstance(exc, http.client.BadStatusLine):
        return RemoteError(f"the server at {url} does not speak HTTP/1.1 as expected: {describe_exc(exc)}",
                           kind="protocol", hint="if it serves HTTPS, use https:// in the URL")
    if isinstance(exc, OSError):
        return RemoteError(f"cannot reach the server at {url}: {exc.strerror or describe_exc(exc)}", kind="down")
    return RemoteError(f"the request to {url} failed: {describe_exc(exc)}", kind="protocol")


def _error_detail(body: bytes) -> str:
    """The server's own error message (OpenAI {"error": {"message"}}, Ollama {"error": "..."}, FastAPI
    {"detail": ...}), or the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return snippet(body)
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        if err is not None:
            return snippet(err if isinstance(err, str) else json.dumps(err))
    return snippet(body)


def retry_after(headers: Any) -> float | None:
    raw = headers.get("Retry-After") if headers is not None else None
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        from email.utils import parsedate_to_datetime
        from datetime import datetime, timezone

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def status_error(endpoint: Endpoint, status: int, headers: Any, body: bytes, tail: str) -> RemoteError:
    detail = _error_detail(body)
    url = endpoint.url
    said = f": {detail}" if detail else ""
    if status in (401, 403):
        return RemoteError(f"the server at {url} refused access (HTTP {status}){said}", kind="auth", status=status,
                           hint="store the right API key in the remote server settings "
                                "(r1desk models key --server URL)")
    if status == 404:
        what = "this model" if "chat" in tail else f"{tail}"
        return RemoteError(f"the server at {url} does not have {what} (HTTP 404){said}", kind="not_found",
                           status=status, hint="list its models with: r1desk models list --server URL")
    if status == 429:
        wait = retry_after(headers)
        when = f"; it asks to retry after {wait:g} s" if wait is not None else ""
        return RemoteError(f"the server at {url} is rate-limiting requests (HTTP 429){when}{said}",
                           kind="rate_limited", status=status, retry_after_s=wait, hint="try again later")
    if status >= 500:
        return RemoteError(f"the server at {url} failed (HTTP {status}){said}", kind="server", status=status,
                           hint="the server's own log says why")
    if status == 400 and "context" in detail.lower():
        return RemoteError(f"the server at {url} refused the prompt (HTTP 400){said}", kind="server",
                           status=status, hint="shorten the conversation or lower the maximum new tokens")
    return RemoteError(f"the server at {url} refused the request (HTTP {status}){said}", kind="server",
                       status=status)
