"""The real Detoxify code path, with a tiny random-weight checkpoint in Detoxify's own format."""
from __future__ import annotations

import json
import shutil
import threading

import pytest
import torch

from r1desk import paths
from r1desk.core.guard import weights
from r1desk.core.guard.toxicity import LABELS
from r1desk.core.guard.toxicity import DetoxifyScorer, Scorer, ToxicityClassifier, make_scorers
from r1desk.errors import ClassifierUnavailableError, DownloadError


def test_import_then_score_through_detoxify(installed_tiny_detoxify):
    assert installed_tiny_detoxify.installed
    scorer = DetoxifyScorer("original")
    assert isinstance(scorer, Scorer)
    out = scorer.score(["hello world", "you stupid idiot", "third one"])
    assert len(out) == 3
    # the checkpoint's names (toxic, severe_toxic, identity_hate) come back normalised
    assert set(out[0]) == {"toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"}
    assert set(out[0]) <= set(LABELS)
    assert all(0.0 <= v <= 1.0 for row in out for v in row.values())
    assert out[0] != out[1]  # different texts, different scores: a real model ran
    single = scorer.score(["hello world"])  # a batch of one comes back squeezed from Detoxify
    assert single[0] == pytest.approx(out[0], abs=1e-5)


def test_loaded_once_under_concurrent_first_use(installed_tiny_detoxify, monkeypatch):
    import detoxify

    calls = []
    real = detoxify.Detoxify

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(detoxify, "Detoxify", counting)
    scorer = DetoxifyScorer("original", num_threads=1)
    threads = [threading.Thread(target=scorer.score, args=(["some text"],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(calls) == 1
    assert calls[0]["checkpoint"].endswith("checkpoint.ckpt")  # offline, from classifiers_dir
    assert calls[0]["huggingface_config_path"].startswith(str(paths.classifiers_dir()))


def test_installed_checkpoint_points_at_the_local_config(installed_tiny_detoxify):
    ckpt, hf = weights.require("original")
    loaded = torch.load(str(ckpt), weights_only=True)
    assert loaded["config"]["arch"]["args"]["model_type"] == str(hf)
    assert loaded["config"]["r1desk_base_model"] == "bert-base-uncased"
    assert json.loads((hf / "config.json").read_text())["id2label"]["0"] == "toxic"


def test_profile_moved_after_install_is_repointed(installed_tiny_detoxify, tmp_path, monkeypatch):
    moved = tmp_path / "moved-home"
    shutil.copytree(paths.data_dir().parent, moved)
    monkeypatch.setenv("R1DESK_HOME", str(moved))
    scorer = DetoxifyScorer("original")
    assert len(scorer.score(["still works"])) == 1
    info = json.loads((paths.classifiers_dir() / "original" / "install.json").read_text())
    assert info["hf_dir"].startswith(str(moved))


def test_no_weights_is_a_clear_error():
    scorer = DetoxifyScorer("unbiased")
    with pytest.raises(ClassifierUnavailableError) as exc:
        scorer.load()
    msg = str(exc.value)
    assert "'unbiased' weights missing" in msg and "--import-weights unbiased" in msg
    with pytest.raises(ClassifierUnavailableError):  # remembered, not retried on every segment
        scorer.score(["x"])


def test_guard_reports_unavailable_never_silently_off():
    from r1desk.core.events import Notice
    from r1desk.core.guard.pipeline import GuardPipeline
    from r1desk.core.guard.policy import Policy

    pipe = GuardPipeline(Policy(), [ToxicityClassifier(DetoxifyScorer("original"))], None, "off")
    status = pipe.prepare()
    assert status.toxicity == "unavailable"
    assert "toxicity filter unavailable" in status.summary()
    notices = [e for e in pipe.poll() if isinstance(e, Notice)]
    assert notices and notices[0].kind == "classifier_unavailable" and "--import-weights" in notices[0].message


def test_multilingual_is_used_only_when_installed(installed_tiny_detoxify, tiny_detoxify_files):
    main, extra = make_scorers("original")
    assert extra is None and main.languages == frozenset({"en"})
    weights.import_weights("multilingual", *tiny_detoxify_files)
    main, extra = make_scorers("original")
    assert extra is not None and "fr" in extra.languages and extra.model_type == "multilingual"


def test_import_rejects_bad_files(tmp_path, tiny_detoxify_files):
    ckpt, hf = tiny_detoxify_files
    with pytest.raises(ClassifierUnavailableError, match="not found"):
        weights.import_weights("original", tmp_path / "nope.ckpt", hf)
    with pytest.raises(ClassifierUnavailableError, match="no config.json"):
        weights.import_weights("original", ckpt, tmp_path)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ClassifierUnavailableError, match="not a readable PyTorch checkpoint"):
        weights.import_weights("original", junk, hf)
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, str(plain))
    with pytest.raises(ClassifierUnavailableError, match="not a Detoxify checkpoint"):
        weights.import_weights("original", plain, hf)
    with pytest.raises(ClassifierUnavailableError, match="unknown Detoxify model type"):
        weights.import_weights("huge", ckpt, hf)
    assert not weights.status("original").installed  # nothing half-installed


def test_download_offline_says_how_to_import():
    with pytest.raises(DownloadError) as exc:
        weights.download_weights("original")
    assert "HF_HUB_OFFLINE" in str(exc.value) and "--import-weights" in str(exc.value)


def test_checkpoint_urls_come_from_detoxify():
    from detoxify.detoxify import MODEL_URLS

    assert weights.checkpoint_url("original-small") == MODEL_URLS["original-small"]


def test_a_dropped_connection_is_a_download_error_and_leaves_no_part_file(tmp_path, monkeypatch):
    import http.client
    import io

    class Dropped(io.BytesIO):
        headers = {"Content-Length": "10"}

        def read(self, n=-1):
            raise http.client.IncompleteRead(b"abc", 7)

    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: Dropped())
    dest = tmp_path / "model-0123abcd.ckpt"
    with pytest.raises(DownloadError, match="failed"):
        weights._download("https://example.invalid/model-0123abcd.ckpt", dest, None)
    assert list(tmp_path.iterdir()) == []


def test_damaged_json_files_are_clear_errors(installed_tiny_detoxify, tmp_path, tiny_detoxify_files):
    ckpt, hf = tiny_detoxify_files
    bad_hf = tmp_path / "bad-hf"
    shutil.copytree(hf, bad_hf)
    (bad_hf / "config.json").write_bytes(b"\xff not json")
    with pytest.raises(ClassifierUnavailableError, match="not a Hugging Face model config"):
        weights.import_weights("unbiased", ckpt, bad_hf)
    assert not weights.status("unbiased").installed
    (paths.classifiers_dir() / "original" / "install.json").write_text("{truncated")
    with pytest.raises(ClassifierUnavailableError, match="install.json is damaged"):
        DetoxifyScorer("original").load()
