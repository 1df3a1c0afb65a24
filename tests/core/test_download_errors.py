"""Issue 14 item 16: a download without a network says so in words; the raw error goes to the log."""
from __future__ import annotations

import logging
import socket
import urllib.error

import pytest

from r1desk.core.downloads import NO_CONNECTION, download, network_reason
from r1desk.errors import DownloadError


def _chained(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("HTTPSConnectionPool(host='huggingface.co'): request failed") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("exc", [
    socket.gaierror(-2, "Name or service not known"),
    urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")),
    ConnectionRefusedError(111, "Connection refused"),
    _chained(socket.gaierror(-2, "Name or service not known")),
])
def test_no_network_is_said_plainly_and_logged(exc, caplog):
    with caplog.at_level(logging.INFO, logger="r1desk.downloads"):
        assert network_reason(exc) == NO_CONNECTION
    assert "Errno" not in NO_CONNECTION and any("no connection" in r.message for r in caplog.records)


def test_other_errors_keep_their_reason():
    assert network_reason(ValueError("404 Client Error: Entry Not Found")) == "404 Client Error: Entry Not Found"


def test_download_from_an_unreachable_host_says_no_connection():
    with pytest.raises(DownloadError) as info:
        download("someone/model", "model.gguf", endpoint="http://127.0.0.1:9")
    assert NO_CONNECTION in str(info.value) and "Errno" not in str(info.value)
