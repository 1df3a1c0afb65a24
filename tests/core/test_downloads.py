"""Downloads through huggingface_hub against a local fake Hub, and local imports.

The fake Hub is a real HTTP server on 127.0.0.1 answering the HEAD (metadata) and GET (Range)
requests huggingface_hub makes, so the real client code runs: no network, no mocks of it.
"""
from __future__ import annotations

import hashlib
import http.server
import socket
import re
import shutil
import threading
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from r1desk import paths
from r1desk.core import downloads
from r1desk.core.catalog import get_entry
from r1desk.core.downloads import DownloadCancelled, Progress, download, import_local
from r1desk.errors import DownloadError, ModelFileError

REPO = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF"
NAME = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
COMMIT = "c0ffee" * 6 + "abcd"


def make_gguf(path: Path, rows: int = 256) -> Path:
    """A small but real GGUF (llama architecture, one f32 tensor of rows×256)."""
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("download test model")
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_tensor("token_embd.weight", np.arange(rows * 256, dtype=np.float32).reshape(rows, 256))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class FakeHub(http.server.ThreadingHTTPServer):
    """Serves files at /<repo>/resolve/<rev>/<name> like the Hub: LFS headers, Range support.

    Closing it also ends the handler threads that wait on kept-alive client connections (the test suite
    fails a test that leaves threads running)."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, files: dict[str, bytes]) -> None:
        self.open_sockets: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.sha_override: dict[str, str] = {}
        self.drop_next_get_after: int | None = None   # bytes sent before dropping the connection
        self.requests: list[tuple[str, str, str | None]] = []

    def handle_error(self, request, client_address) -> None:
        pass  # a client that cancels mid-body resets the connection: expected here

    def process_request(self, request, client_address) -> None:
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def server_close(self) -> None:
        for sock in list(self.open_sockets):      # wake handlers blocked reading the next kept-alive request
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        super().server_close()                    # joins the handler threads (block_on_close)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _file(self) -> tuple[str, bytes] | None:
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
        if not match or match.group(3) not in self.server.files:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        name = match.group(3)
        return name, self.server.files[name]

    def _common_headers(self, name: str, data: bytes) -> None:
        sha = self.server.sha_override.get(name) or hashlib.sha256(data).hexdigest()
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("ETag", f'"{sha}"')
        self.send_header("Accept-Ranges", "bytes")

    def do_HEAD(self) -> None:
        self.server.requests.append(("HEAD", self.path, None))
        found = self._file()
        if found is None:
            return
        name, data = found
        self.send_response(200)
        self._common_headers(name, data)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self) -> None:
        range_header = self.headers.get("Range")
        self.server.requests.append(("GET", self.path, range_header))
        found = self._file()
        if found is None:
            return
        name, data = found
        start = 0
        if range_header:
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self._common_headers(name, data)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = self.server.drop_next_get_after
        if drop is not None:
            self.server.drop_next_get_after = None
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def payload(tmp_path_factory) -> bytes:
    return make_gguf(tmp_path_factory.mktemp("src") / "m.gguf").read_bytes()


@pytest.fixture
def hub(payload, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    server = FakeHub({NAME: payload})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


Run = namedtuple("Run", "path reports")


def run_download(hub: FakeHub, **kwargs) -> Run:
    reports: list[Progress] = []
    path = download(REPO, NAME, endpoint=hub.endpoint, progress=reports.append, **kwargs)
    return Run(path, reports)


def test_download_lands_in_models_dir_with_progress(hub, payload):
    run = run_download(hub)
    assert run.path == paths.models_dir() / NAME
    assert run.path.read_bytes() == payload
    downloading = [r for r in run.reports if r.phase == "downloading"]
    assert len(downloading) >= 4
    assert downloading[-1].done == downloading[-1].total == len(payload)
    assert all(a.done <= b.done for a, b in zip(downloading, downloading[1:]))
    assert any(r.speed and r.eta_s is not None for r in downloading)
    assert {r.phase for r in run.reports} == {"downloading", "verifying", "done"}
    assert run.reports[-1].phase == "done"
    assert downloads.partial_downloads() == []
    assert [m for m, *_ in hub.requests] == ["HEAD", "GET"]


def test_download_of_a_catalog_entry(hub, payload):
    path = downloads.download_entry(get_entry("r1-qwen-1.5b-q4_k_m"), endpoint=hub.endpoint)
    assert path.name == NAME and path.read_bytes() == payload


def test_second_download_is_a_no_op(hub):
    run_download(hub)
    hub.requests.clear()
    run_download(hub)
    assert [m for m, *_ in hub.requests] == ["HEAD"]


def test_dropped_connection_is_resumed_with_a_range_request(hub, payload):
    hub.drop_next_get_after = len(payload) // 2
    run = run_download(hub)
    assert run.path.read_bytes() == payload
    gets = [r for r in hub.requests if r[0] == "GET"]
    assert len(gets) == 2 and gets[0][2] is None
    # It resumes from the bytes it had written (whole chunks), not from zero.
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1][2]).group(1))
    assert 0 < resumed_at <= len(payload) // 2


def test_cancel_keeps_the_partial_file_and_the_next_download_resumes(hub, payload):
    cancel = threading.Event()
    seen: list[int] = []

    def on_progress(p: Progress) -> None:
        seen.append(p.done)
        if p.done >= len(payload) // 3:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="cancelled"):
        download(REPO, NAME, endpoint=hub.endpoint, progress=on_progress, cancel=cancel)
    assert not (paths.models_dir() / NAME).exists()
    [part] = downloads.partial_downloads()
    kept = part.stat().st_size
    # huggingface_hub reports a chunk before writing it, so the cancelled chunk is not on disk.
    assert 0 < kept < len(payload) and kept <= seen[-1]
    assert part.read_bytes() == payload[:kept]

    hub.requests.clear()
    run = run_download(hub)
    assert run.path.read_bytes() == payload
    assert ("GET", f"/{REPO}/resolve/main/{NAME}", f"bytes={kept}-") in hub.requests
    assert run.reports[0].done > kept   # the bar starts from the resumed size, not from zero
    assert downloads.partial_downloads() == []


def test_cancel_before_start_downloads_nothing(hub):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        download(REPO, NAME, endpoint=hub.endpoint, cancel=cancel)
    assert not (paths.models_dir() / NAME).exists()


def test_checksum_mismatch_is_an_error_and_the_file_is_not_kept(hub):
    hub.sha_override[NAME] = "0" * 64
    with pytest.raises(DownloadError, match="corrupt: its sha256"):
        run_download(hub)
    assert not (paths.models_dir() / NAME).exists()
    assert downloads.partial_downloads() == []


def test_catalog_checksum_is_checked_too(hub):
    with pytest.raises(DownloadError, match="expected 111111111111"):
        run_download(hub, expected_sha256="1" * 64)
    assert not (paths.models_dir() / NAME).exists()


def test_a_file_that_is_not_a_gguf_is_rejected_after_download(hub):
    hub.files[NAME] = b"<html>not a model</html>" * 100
    with pytest.raises(DownloadError, match="not a usable model"):
        run_download(hub)
    assert not (paths.models_dir() / NAME).exists()
    assert downloads.partial_downloads() == []


def test_not_enough_disk_space_stops_before_downloading(hub, monkeypatch):
    usage = shutil.disk_usage(paths.models_dir())
    monkeypatch.setattr(downloads.shutil, "disk_usage",
                        lambda p: usage._replace(free=downloads.DISK_MARGIN_BYTES + 1000))
    with pytest.raises(DownloadError, match="not enough disk space") as excinfo:
        run_download(hub)
    assert "pick a smaller quantisation" in str(excinfo.value)
    assert [m for m, *_ in hub.requests] == ["HEAD"]


def test_missing_file_on_the_hub(hub):
    with pytest.raises(DownloadError, match="cannot reach nope.gguf"):
        download(REPO, "nope.gguf", endpoint=hub.endpoint)


def test_offline_mode_is_a_clear_error():
    # conftest sets HF_HUB_OFFLINE=1: the real client refuses, and we say so plainly.
    with pytest.raises(DownloadError, match="cannot reach"):
        download(REPO, NAME, endpoint="http://127.0.0.1:9")


# -- import_local ---------------------------------------------------------------------------------
def test_import_local_links_a_valid_gguf(tmp_path):
    src = make_gguf(tmp_path / "mine.gguf", rows=4)
    dest = import_local(src)
    assert dest == paths.models_dir() / "mine.gguf"
    assert dest.read_bytes() == src.read_bytes()
    assert import_local(src) == dest          # importing again: same file, no copy
    assert import_local(dest) == dest         # already in the folder


def test_import_local_copies_when_linking_is_impossible(tmp_path, monkeypatch):
    src = make_gguf(tmp_path / "copyme.gguf", rows=4)

    def no_link(*_):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(downloads.os, "link", no_link)
    dest = import_local(src)
    assert dest.read_bytes() == src.read_bytes() and dest.stat().st_ino != src.stat().st_ino


def test_import_local_keeps_a_different_file_with_the_same_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_gguf(tmp_path / "a" / "model.gguf", rows=4)
    second = make_gguf(tmp_path / "b" / "model.gguf", rows=8)
    assert import_local(first).name == "model.gguf"
    assert import_local(second).name == "model-2.gguf"


@pytest.mark.parametrize("case", ["missing", "empty", "wrong_magic", "directory"])
def test_import_local_rejects_bad_files_and_copies_nothing(tmp_path, case):
    bad = tmp_path / f"{case}.gguf"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "wrong_magic":
        bad.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    elif case == "directory":
        bad.mkdir()
    with pytest.raises(ModelFileError):
        import_local(bad)
    assert list(paths.models_dir().iterdir()) == []


def test_import_local_truncated_gguf(tmp_path):
    good = make_gguf(tmp_path / "good.gguf").read_bytes()
    bad = tmp_path / "half.gguf"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        import_local(bad)
    assert list(paths.models_dir().iterdir()) == []
