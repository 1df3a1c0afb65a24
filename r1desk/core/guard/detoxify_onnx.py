"""Detoxify on ONNX Runtime: the same checkpoints, labels and scores, without torch.

``OnnxDetoxifyScorer`` has ``DetoxifyScorer``'s interface (name, labels, languages, notes, loaded,
load(), score(texts)) and runs the files ``onnx_export`` wrote into ``<model_type>/onnx/``: the
model (sigmoid included) with onnxruntime, the tokenizer with ``tokenizers`` (the Rust library
transformers' fast tokenizers use). It imports neither torch, transformers nor detoxify.

Where the conversion is missing and the torch extra is installed, ``load()`` converts once
(``onnx_export.export``); without torch it says how to convert on a machine that has it.
Default: int8 (bench/bench_classifier_runtimes.py: fastest, and no decision changed at the default
thresholds on the real-size random-weight models; see bench/RESULTS.md).
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from r1desk.core.guard import weights
from r1desk.core.guard.toxicity import LABELS
from r1desk.core.guard.toxicity import (ENGLISH, LABEL_ALIASES, MULTILINGUAL_LANGUAGES, length_batches,
                                        normalise)
from r1desk.fileutil import staged_folder
from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")

ONNX_DIR = "onnx"  # the names onnx_export writes (kept here so the runtime never imports it)
FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
TOKENIZER_NAME = "tokenizer.json"
META_NAME = "meta.json"
FORMAT = 1


def onnx_folder(model_type: str, root: Path | None = None) -> Path:
    return weights.model_folder(model_type, root) / ONNX_DIR


def onnx_installed(model_type: str, root: Path | None = None, *, int8: bool = True) -> bool:
    """True when the converted model (and its tokenizer and meta) is there; no torch needed to use it."""
    folder = onnx_folder(model_type, root)
    return all((folder / name).is_file() for name in (INT8_NAME if int8 else FP32_NAME, TOKENIZER_NAME, META_NAME))


def installed_onnx_types(root: Path | None = None, *, int8: bool = True) -> list[str]:
    return [t for t in weights.MODEL_TYPES if onnx_installed(t, root, int8=int8)]


def import_onnx(model_type: str, source: Path, *, root: Path | None = None) -> Path:
    """Install a conversion made elsewhere (a copy of ``<type>/onnx/`` from a machine with the torch
    extra): what the packaged app, which has no torch, uses instead of a checkpoint. Returns the folder."""
    import shutil

    source = Path(source)
    names = [n for n in (FP32_NAME, INT8_NAME) if (source / n).is_file()]
    try:
        meta = json.loads((source / META_NAME).read_text(encoding="utf-8"))
        ok = (isinstance(meta, dict) and meta.get("format") == FORMAT and meta.get("model_type") == model_type
              and isinstance(meta.get("classes"), list) and isinstance(meta.get("inputs"), list))
    except (OSError, ValueError):
        ok = False
    if not ok or not names or not (source / TOKENIZER_NAME).is_file():
        raise ClassifierUnavailableError(
            f"{source} is not an ONNX conversion of Detoxify '{model_type}' (it needs {META_NAME} for that type, "
            f"{TOKENIZER_NAME} and {INT8_NAME} or {FP32_NAME})",
            hint=f"make one with `python -m r1desk.core.guard.onnx_export {model_type}` where r1desk[torch] "
                 f"is installed, then copy its onnx folder")
    folder = onnx_folder(model_type, root)
    with staged_folder(folder, prefix=".onnx-") as staging:
        for name in [*names, TOKENIZER_NAME, META_NAME]:
            shutil.copyfile(source / name, staging / name)
    log.info("installed the ONNX conversion of Detoxify %s in %s", model_type, folder)
    return folder


class OnnxDetoxifyScorer:
    """One Detoxify model on onnxruntime. ``load()`` (or the first ``score``) loads it, once, thread-safe;
    failures raise ClassifierUnavailableError saying what is missing and how to get it."""

    def __init__(self, model_type: str = "original", *, num_threads: int = 1, root: Path | None = None,
                 quantize: bool = True, convert: bool = True) -> None:
        self.model_type = model_type
        self.quantize = quantize  # the int8 model (dynamic quantisation of MatMul/Gemm weights)
        self.convert = convert    # convert now when the onnx folder is missing and torch is installed
        self.name = f"detoxify-{model_type}-onnx" + ("-int8" if quantize else "")
        self.num_threads = num_threads
        self.root = root
        self.languages = MULTILINGUAL_LANGUAGES if model_type == "multilingual" else ENGLISH
        self.labels: tuple[str, ...] = LABELS
        self.notes: list[str] = []
        self._session: Any = None
        self._tokenizer: Any = None
        self._classes: list[str] = []
        self._inputs: list[str] = []
        self._error: ClassifierUnavailableError | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        with self._lock:
            self._load_locked()

    def _files(self) -> Path:
        folder = onnx_folder(self.model_type, self.root)
        if onnx_installed(self.model_type, self.root, int8=self.quantize):
            return folder
        if self.convert and weights.status(self.model_type, self.root).installed:
            from r1desk.core.guard import onnx_export  # imports torch only inside export()

            log.info("converting Detoxify %s to ONNX (once)", self.model_type)
            onnx_export.export(self.model_type, self.root, quantize=True)  # raises naming the extra
            return folder
        status = weights.status(self.model_type, self.root)
        if not status.installed:     # nothing to convert either: say what to import or download
            raise ClassifierUnavailableError(
                f"{status.message()} (or install a conversion made elsewhere with "
                f"`r1desk classify --import-onnx {self.model_type} DIR`)")
        raise ClassifierUnavailableError(
            f"Detoxify '{self.model_type}' has no ONNX conversion in {folder}",
            hint=(f"{weights.status(self.model_type, self.root).message()}; then convert it with "
                  f"`python -m r1desk.core.guard.onnx_export {self.model_type}` (needs pip install 'r1desk[torch]')"))

    def _load_locked(self) -> None:
        if self._session is not None:
            return
        if self._error is not None:
            raise self._error
        try:
            folder = self._files()
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise ClassifierUnavailableError(f"ONNX Runtime is not installed ({exc})",
                                                 hint="pip install onnxruntime tokenizers") from None
            try:
                meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise ValueError(f"unknown format {meta.get('format') if isinstance(meta, dict) else meta!r}")
                tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_NAME))
                tokenizer.enable_truncation(int(meta["max_length"]))
                tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))
                options = ort.SessionOptions()
                options.intra_op_num_threads = max(1, self.num_threads)
                options.inter_op_num_threads = 1
                # Idle pool threads must not spin: llama.cpp needs the cores between segments.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.log_severity_level = 3
                model = folder / (INT8_NAME if self.quantize else FP32_NAME)
                session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
                classes = [str(c) for c in meta["classes"]]
                inputs = [str(n) for n in meta["inputs"]]
            except Exception as exc:  # noqa: BLE001 - onnxruntime and tokenizers raise their own types
                raise ClassifierUnavailableError(
                    f"the ONNX model of Detoxify '{self.model_type}' in {folder} failed to load: {exc}",
                    hint=f"convert it again with `python -m r1desk.core.guard.onnx_export {self.model_type}`") from None
            self._tokenizer, self._session, self._classes, self._inputs = tokenizer, session, classes, inputs
            self.labels = tuple(label for label in (LABEL_ALIASES.get(c, c) for c in classes) if label in LABELS)
            log.info("Detoxify %s loaded on ONNX Runtime (%s; labels: %s)", self.model_type,
                     "int8" if self.quantize else "fp32", ", ".join(self.labels))
        except ClassifierUnavailableError as exc:
            self._error = exc
            log.warning("toxicity filter unavailable: %s", exc)
            raise

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        import numpy as np

        with self._lock:
            self._load_locked()
            out: list[dict[str, float]] = [{} for _ in texts]
            for batch in length_batches(texts):
                encodings = self._tokenizer.encode_batch([texts[i] for i in batch])
                feed = {
                    "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
                }
                probs = self._session.run(None, {n: feed[n] for n in self._inputs})[0]
                for j, i in enumerate(batch):
                    out[i] = normalise({c: float(p) for c, p in zip(self._classes, probs[j])})
            return out
