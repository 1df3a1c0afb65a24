"""`r1desk models catalog` and `r1desk models download` (issue 14 item 17): the model manager's numbers and
downloads on the command line, against the local fake Hub (real huggingface_hub client, no network)."""
from __future__ import annotations

import hashlib
import json

import pytest

from r1desk import paths
from r1desk.cli import main
from r1desk.core import catalog, hardware
from r1desk.core.downloads import PARTIAL_DIR
from tests.core.test_downloads import NAME, hub, payload  # noqa: F401 - fixtures

ENTRY = "r1-qwen-1.5b-q4_k_m"          # its file is NAME on the fake Hub


@pytest.fixture(autouse=True)
def known_bandwidth(monkeypatch):
    monkeypatch.setattr(hardware, "memory_bandwidth", lambda refresh=False: 10e9)
    monkeypatch.setattr(hardware, "detect_gpus", lambda timeout=5.0: ())


@pytest.fixture
def hub_endpoint(hub, monkeypatch):  # noqa: F811 - the fixture above
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    return hub


def test_catalog_json_matches_the_app(capsys):
    assert main(["models", "catalog", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    hw = hardware.detect(bandwidth=True)
    expected = {a.entry.id: a for a in hardware.assess(catalog.entries(), hw)}
    assert [m["id"] for m in data["models"]] == [e.id for e in catalog.entries()]
    assert "r1-0528-qwen3-8b-q4_k_m" in expected
    for m in data["models"]:
        a = expected[m["id"]]
        assert m["fit"] == a.fit and m["memory_needed"] == a.memory_needed
        assert m["tokens_per_s"] == pytest.approx(a.speed.tokens_per_s, abs=0.01)
        assert m["recommended"] == a.recommended and "GiB" in m["reason"]
        assert m["downloaded"] is False
    assert sum(m["recommended"] for m in data["models"]) <= 1
    assert data["machine"]["bandwidth"] == 10e9


def test_catalog_text_has_labels_speeds_and_one_unit(capsys):
    assert main(["models", "catalog", "--context", "8192"]) == 0
    out = capsys.readouterr().out
    assert "r1-qwen-7b-q4_k_m" in out and "tok/s" in out and "GiB" in out and " GB " not in out
    assert any(mark in out for mark in ("✓ fits", "~ tight", "✗ won't fit"))
    if "★ recommended" in out:
        assert "r1desk models download r1-" in out


def test_download_json_progress_checksum_and_result(hub_endpoint, payload, capsys):  # noqa: F811
    assert main(["models", "download", ENTRY, "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["event"] == "done" and result["sha256_checked"] is True
    dest = paths.models_dir() / NAME
    assert result["path"] == str(dest) and dest.read_bytes() == payload
    events = [json.loads(line) for line in captured.err.splitlines()]
    assert {e["phase"] for e in events} >= {"downloading", "verifying", "done"}
    assert events[-1]["phase"] == "done" and events[-1]["done"] == len(payload)
    assert main(["models", "catalog", "--json"]) == 0
    listed = {m["id"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed[ENTRY]["downloaded"] is True


def test_download_resumes_a_partial_file(hub_endpoint, payload, capsys):  # noqa: F811
    part_dir = paths.models_dir() / PARTIAL_DIR
    part_dir.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(payload).hexdigest()
    (part_dir / f"{NAME}.{sha[:16]}.part").write_bytes(payload[:5000])
    assert main(["models", "catalog"]) == 0
    assert "partial (download resumes)" in capsys.readouterr().out
    assert main(["models", "download", ENTRY]) == 0
    out = capsys.readouterr()
    assert "downloaded:" in out.out and "GiB" in out.out and "downloading" in out.err
    assert ("GET", f"/{catalog.get_entry(ENTRY).repo_id}/resolve/main/{NAME}", "bytes=5000-") in hub_endpoint.requests
    assert (paths.models_dir() / NAME).read_bytes() == payload


def test_download_with_a_bad_checksum_fails_and_keeps_nothing(hub_endpoint, capsys):
    hub_endpoint.sha_override[NAME] = "0" * 64
    assert main(["models", "download", ENTRY]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "Traceback" not in err
    assert not (paths.models_dir() / NAME).exists()


def test_unknown_id_points_to_the_catalog(capsys):
    assert main(["models", "download", "gpt-5"]) == 2
    assert "r1desk models catalog" in capsys.readouterr().err
