"""Detoxify on ONNX Runtime: the tiny random-weight checkpoint converted, scored against the torch path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from r1desk.core.guard import onnx_export, weights
from r1desk.core.guard.detoxify_onnx import (OnnxDetoxifyScorer, installed_onnx_types, onnx_folder,
                                             onnx_installed)
from r1desk.core.guard.toxicity import DetoxifyScorer, Scorer
from r1desk.errors import ClassifierUnavailableError

TEXTS = ["hello world", "you stupid idiot, i hate you", "let me think: two plus two equals four",
         "ok", "the answer is ten. " * 30, "Ünïcödé text, ça va? 😀", ""]


@pytest.fixture
def converted(installed_tiny_detoxify) -> Path:
    return onnx_export.export("original")


def max_diff(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    assert [set(x) for x in a] == [set(x) for x in b]
    return max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in x)


def test_onnx_scores_match_the_torch_path(converted):
    assert sorted(p.name for p in converted.iterdir()) == ["meta.json", "model.int8.onnx", "model.onnx",
                                                            "tokenizer.json"]
    torch_scores = DetoxifyScorer("original").score(TEXTS)
    fp32 = OnnxDetoxifyScorer("original", quantize=False)
    assert isinstance(fp32, Scorer)
    assert max_diff(fp32.score(TEXTS), torch_scores) < 1e-5
    assert set(fp32.labels) == set(torch_scores[0])
    assert fp32.name == "detoxify-original-onnx" and fp32.languages == frozenset({"en"})
    int8 = OnnxDetoxifyScorer("original")
    assert int8.name == "detoxify-original-onnx-int8"
    # dynamic int8 moves scores a little (bench/bench_classifier_runtimes.py measures the real-size models)
    assert max_diff(int8.score(TEXTS), torch_scores) < 0.05
    # a batch of one and the same text in a batch give the same scores
    assert fp32.score([TEXTS[1]])[0] == pytest.approx(fp32.score(TEXTS)[1], abs=1e-5)


def test_runtime_imports_neither_torch_nor_detoxify(converted):
    code = ("import sys\n"
            "from r1desk.core.guard.detoxify_onnx import OnnxDetoxifyScorer\n"
            "s = OnnxDetoxifyScorer('original', convert=False)\n"
            "print(s.score(['hello world'])[0]['toxicity'])\n"
            "bad = [m for m in ('torch', 'detoxify', 'transformers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 0.0 <= float(out.stdout) <= 1.0


def test_missing_conversion_says_how_to_convert(installed_tiny_detoxify):
    scorer = OnnxDetoxifyScorer("original", convert=False)
    with pytest.raises(ClassifierUnavailableError, match="onnx_export original"):
        scorer.load()
    with pytest.raises(ClassifierUnavailableError):  # the failure is remembered, not retried per segment
        scorer.score(["x"])
    assert not scorer.loaded


def test_not_installed_at_all_says_how_to_import():
    with pytest.raises(ClassifierUnavailableError, match="import-weights original"):
        OnnxDetoxifyScorer("original").load()


def test_converts_once_on_first_load_when_torch_is_there(installed_tiny_detoxify, monkeypatch):
    calls = []
    real = onnx_export.export
    monkeypatch.setattr(onnx_export, "export", lambda *a, **k: calls.append(a) or real(*a, **k))
    scorer = OnnxDetoxifyScorer("original")
    threads = [threading.Thread(target=scorer.score, args=(["some text"],)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert scorer.loaded and len(calls) == 1
    assert onnx_installed("original") and installed_onnx_types() == ["original"]


def test_reimport_drops_the_old_conversion(converted, tiny_detoxify_files):
    weights.import_weights("original", *tiny_detoxify_files)
    assert not onnx_installed("original")


def test_import_and_convert(tiny_detoxify_files):
    st = onnx_export.import_and_convert("original", *tiny_detoxify_files)
    assert st.installed and onnx_installed("original") and onnx_installed("original", int8=False)
    meta = json.loads((onnx_folder("original") / "meta.json").read_text())
    assert meta["classes"][0] == "toxicity"  # Detoxify's renamed class names ("toxic" in the checkpoint)
    assert meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert meta["max_length"] == 128


@pytest.mark.parametrize("damage", ["meta", "model"])
def test_damaged_conversion_is_unavailable_not_a_crash(converted, damage):
    if damage == "meta":
        (converted / "meta.json").write_text("{not json")
    else:
        (converted / "model.int8.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ClassifierUnavailableError, match="failed to load"):
        OnnxDetoxifyScorer("original", convert=False).load()


def test_export_without_the_torch_extra_names_it(installed_tiny_detoxify, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    with pytest.raises(ClassifierUnavailableError, match=r"r1desk\[torch\]"):
        onnx_export.export("original")
    assert not onnx_installed("original")


def test_import_with_convert_writes_the_onnx_model(tiny_detoxify_files):
    st = weights.import_weights("original", *tiny_detoxify_files, convert=True)
    assert st.installed and onnx_installed("original")


def test_reading_a_checkpoint_without_torch_names_the_extra(tiny_detoxify_files, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # a `pip install r1desk` without the extra
    with pytest.raises(ClassifierUnavailableError, match=r"r1desk\[torch\]"):
        weights.import_weights("original", *tiny_detoxify_files)
    with pytest.raises(ClassifierUnavailableError, match=r"r1desk\[torch\]"):
        weights.checkpoint_url("original")


def test_a_conversion_made_elsewhere_installs_without_torch(converted, tmp_path, monkeypatch, capsys):
    from r1desk.cli import main
    from r1desk.core.guard.detoxify_onnx import import_onnx

    copy = tmp_path / "made-elsewhere"
    import shutil

    shutil.copytree(converted, copy)
    shutil.rmtree(weights.model_folder("original"))      # a profile with no checkpoint at all
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["classify", "--import-onnx", "original", str(copy)]) == 0
    assert "installed" in capsys.readouterr().out
    assert not weights.status("original").installed and onnx_installed("original")
    assert set(OnnxDetoxifyScorer("original", convert=False).score(["hello"])[0]) >= {"toxicity", "insult"}
    with pytest.raises(ClassifierUnavailableError, match="not an ONNX conversion"):
        import_onnx("multilingual", copy)                # meta says 'original'


def build_tiny_xlmr(dest: Path) -> tuple[Path, Path]:
    """A tiny random-weight XLM-RoBERTa Detoxify checkpoint ('multilingual' format: no token_type_ids,
    a SentencePiece-style unigram tokenizer, positions offset by the padding index)."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    from tests.fixtures.classifiers import _WORDS, UNBIASED_CLASSES

    hf = dest / "hf"
    hf.mkdir(parents=True)
    tok = Tokenizer(models.Unigram())
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizers.NFKC(), pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.train_from_iterator([" ".join(_WORDS)] * 20 + ["bonjour ça va très bien merci", "hola qué tal"] * 10,
                            trainers.UnigramTrainer(vocab_size=300, unk_token="<unk>",
                                                    special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    fast = transformers.XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                                cls_token="<s>", sep_token="</s>", model_max_length=64)
    fast.save_pretrained(hf)
    config = transformers.XLMRobertaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=66,
                                           num_labels=len(UNBIASED_CLASSES), pad_token_id=fast.pad_token_id)
    config.save_pretrained(hf)
    torch.manual_seed(0)
    model = transformers.XLMRobertaForSequenceClassification(config)
    ckpt = dest / "tiny-xlmr.ckpt"
    torch.save({"config": {"name": "tiny-xlmr", "arch": {"type": "XLMR", "args": {
        "num_classes": len(UNBIASED_CLASSES), "model_type": "xlm-roberta-base",
        "model_name": "XLMRobertaForSequenceClassification", "tokenizer_name": "XLMRobertaTokenizer"}},
        "dataset": {"type": "JigsawDataMultilingualToxicComments", "args": {"classes": UNBIASED_CLASSES}}},
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}, str(ckpt))
    return ckpt, hf


def test_an_xlm_roberta_shaped_multilingual_model_converts(tmp_path):
    onnx_export.import_and_convert("multilingual", *build_tiny_xlmr(tmp_path))
    meta = json.loads((onnx_folder("multilingual") / "meta.json").read_text())
    assert meta["inputs"] == ["input_ids", "attention_mask"] and meta["pad_id"] == 1 and meta["max_length"] == 64
    texts = ["hello world", "bonjour ça va très bien", "hola qué tal " * 40, "x"]  # the third is truncated
    onnx = OnnxDetoxifyScorer("multilingual", quantize=False)
    assert onnx.languages >= {"fr", "es"}
    assert max_diff(onnx.score(texts), DetoxifyScorer("multilingual").score(texts)) < 1e-5
