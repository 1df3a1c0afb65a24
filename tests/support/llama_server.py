"""llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1, in its own
process group (killed as a group), for end-to-end tests and the bench. Readiness is polled with a bounded
number of /v1/models requests, each with a short timeout."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_available() -> bool:
    try:
        import fastapi, sse_starlette, starlette_context, uvicorn  # noqa: F401, E401
    except ImportError:
        return False
    return True


class LlamaServer:
    def __init__(self, model: Path, *, alias: str = "deepseek-r1-tiny", n_ctx: int = 2048, threads: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.alias = alias
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--verbose", "False"]
        self._log = tempfile.TemporaryFile()      # not a pipe: a chatty server must never block on it
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:        # bounded by the deadline; between tries it waits on the process (ends early if it dies)
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            try:
                self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("llama_cpp.server did not start in time") from None
                continue
            self._log.seek(0)
            err = self._log.read().decode(errors="replace")[-2000:]
            self._log.close()
            raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}: {err}")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        if not self._log.closed:
            self._log.close()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

