"""Guard models on this computer: catalog offers and fit, download (fake Hub: resume, checksum, cancel),
import (refusing anything but a supported guard model), listing, removal; the audited settings change."""
from __future__ import annotations

import threading

import pytest

from r1desk import guard_admin, paths
from r1desk.core import downloads, hardware
from r1desk.core.downloads import DownloadCancelled, Progress
from r1desk.core.guard.harm import install
from r1desk.errors import DownloadError, ModelFileError, SettingsError, UserFacingError
from r1desk.settings import Settings, load_settings
from tests.support.guard_hub import OFFER_ID, guard_hub, guard_payload, make_guard_gguf  # noqa: F401

GiB = 2 ** 30


def test_every_profile_entry_is_offered_with_a_stable_id_and_licence():
    offers = install.offers()
    ids = [o.id for o in offers]
    assert len(ids) == len(set(ids)) >= 6
    assert {"qwen3guard-gen-0.6b-q8_0", OFFER_ID, "granite-guardian-3.0-2b-q4_k_m"} <= set(ids)
    qwen = install.get_offer("qwen3guard-gen-0.6b-q8_0")
    assert not qwen.downloadable and qwen.entry.size_is_estimate       # no public GGUF: import only
    assert install.get_offer(OFFER_ID).downloadable
    data = install.get_offer(OFFER_ID).to_dict()
    assert data["licence"] == "Llama 3.2 Community License" and data["licence_url"].startswith("https://")
    with pytest.raises(UserFacingError, match="no guard model 'nope'"):
        install.get_offer("nope")


def test_fit_uses_the_hardware_thresholds():
    offer = install.get_offer(OFFER_ID)
    need = offer.memory_needed()
    assert offer.entry.approx_bytes < need < 2 * GiB
    roomy = hardware.Hardware(total_ram=16 * GiB, available_ram=12 * GiB)
    tight = hardware.Hardware(total_ram=int(need / 0.85), available_ram=need // 2)
    small = hardware.Hardware(total_ram=need // 2, available_ram=need // 4)
    assert [install.fit(offer, hw) for hw in (roomy, tight, small)] == ["fits", "tight", "won't fit"]


def test_check_accepts_guard_models_and_refuses_a_chat_model(tiny_qwen3guard_path, tiny_llama_guard_path,
                                                             tiny_r1_path):
    assert install.check_guard_model(tiny_qwen3guard_path).profile.id == "qwen3guard-gen"
    assert install.check_guard_model(tiny_llama_guard_path).profile.id == "llama-guard-3"
    with pytest.raises(ModelFileError, match="not a supported guard model: it is a DeepSeek-R1 chat model"):
        install.check_guard_model(tiny_r1_path)


def test_import_links_into_the_guard_folder_and_refuses_other_files(tiny_qwen3guard_path, tiny_r1_path, tmp_path):
    guard = install.import_file(tiny_qwen3guard_path)
    assert guard.path.parent == paths.guard_models_dir()
    assert [g.path for g in install.installed()] == [guard.path]
    with pytest.raises(ModelFileError, match="not a supported guard model"):
        install.import_file(tiny_r1_path)
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a gguf" * 10)
    with pytest.raises(ModelFileError):
        install.import_file(bad)
    assert [p.name for p in paths.guard_models_dir().glob("*.gguf")] == [guard.path.name]
    assert list(paths.models_dir().glob("*.gguf")) == []            # never mixed with the chat models


def test_remove_deletes_only_inside_the_guard_folder(tiny_qwen3guard_path):
    guard = install.import_file(tiny_qwen3guard_path, link=False)
    with pytest.raises(UserFacingError, match="not in r1desk's guard-models folder"):
        install.remove(tiny_qwen3guard_path)
    assert tiny_qwen3guard_path.exists()
    install.remove(guard.path)
    assert not guard.path.exists() and install.installed() == []


def test_download_with_progress_lands_in_the_guard_folder(guard_hub, guard_payload):
    reports: list[Progress] = []
    guard = install.download(install.get_offer(OFFER_ID), progress=reports.append)
    assert guard.path == paths.guard_models_dir() / "Llama-Guard-3-1B.Q4_K_M.gguf"
    assert guard.path.read_bytes() == guard_payload and guard.profile.id == "llama-guard-3"
    assert {r.phase for r in reports} == {"downloading", "verifying", "done"}
    assert install.get_offer(OFFER_ID).local_path == guard.path


def test_cancel_keeps_the_partial_file_and_the_next_download_resumes(guard_hub, guard_payload):
    offer = install.get_offer(OFFER_ID)
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done >= len(guard_payload) // 3:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        install.download(offer, progress=on_progress, cancel=cancel)
    assert offer.local_path is None and offer.partial
    [part] = downloads.partial_downloads(paths.guard_models_dir())
    kept = part.stat().st_size
    assert 0 < kept < len(guard_payload)
    guard_hub.requests.clear()
    guard = install.download(offer)
    assert guard.path.read_bytes() == guard_payload
    assert any(m == "GET" and rng == f"bytes={kept}-" for m, _p, rng in guard_hub.requests)
    assert not offer.partial


def test_checksum_mismatch_keeps_nothing(guard_hub):
    offer = install.get_offer(OFFER_ID)
    guard_hub.sha_override[offer.entry.filename] = "0" * 64
    with pytest.raises(DownloadError, match="corrupt"):
        install.download(offer)
    assert offer.local_path is None and not offer.partial


def test_a_downloaded_file_that_is_not_a_guard_model_is_deleted(guard_hub, tmp_path):
    offer = install.get_offer(OFFER_ID)
    guard_hub.files[offer.entry.filename] = make_guard_gguf(tmp_path / "c.gguf", name="Some chat model").read_bytes()
    with pytest.raises(DownloadError, match="cannot be used: .*not a supported guard model"):
        install.download(offer)
    assert offer.local_path is None


def test_an_import_only_entry_cannot_be_downloaded():
    with pytest.raises(UserFacingError, match="no public GGUF"):
        install.download(install.get_offer("qwen3guard-gen-4b-q4_k_m"))


class Events:
    def __init__(self) -> None:
        self.logged: list[dict] = []

    def log_admin_event(self, *, actor: str, action: str, details: dict | None = None) -> int:
        self.logged.append({"actor": actor, "action": action, "details": details})
        return len(self.logged)


def test_use_and_off_save_the_settings_and_log_one_settings_change(tiny_qwen3guard_path, tiny_r1_path):
    events = Events()
    guard = install.import_file(tiny_qwen3guard_path)
    new, diff = guard_admin.use(Settings(), events, guard.path, actor="admin", threads=3, gpu_layers=-1)
    assert load_settings().guard.harm_model == str(guard.path) == new.guard.harm_model
    assert (new.guard.harm_threads, new.guard.harm_gpu_layers) == (3, -1)
    assert new.guard_config().extra["harm"]["path"] == str(guard.path)
    [event] = events.logged
    assert event["action"] == "settings.change" and event["actor"] == "admin"
    assert {c["key"] for c in event["details"]["changes"]} == {"guard.harm_model", "guard.harm_threads",
                                                               "guard.harm_gpu_layers"}
    assert event["details"]["guard_model"]["profile"] == "qwen3guard-gen"
    assert guard_admin.use(new, events, guard.path, actor="admin", threads=3) == (new, [])   # no change, no event
    assert len(events.logged) == 1

    with pytest.raises(ModelFileError, match="not a supported guard model"):
        guard_admin.use(new, events, tiny_r1_path, actor="admin")
    with pytest.raises(SettingsError):
        guard_admin.use(new, events, guard.path, actor="admin", threads=0)
    assert load_settings().guard.harm_model == str(guard.path) and len(events.logged) == 1

    off, diff = guard_admin.off(new, events, actor="admin")
    assert off.guard.harm_model is None and load_settings().guard.harm_model is None
    assert diff == [("guard.harm_model", str(guard.path), None)]
    assert "harm" not in off.guard_config().extra
