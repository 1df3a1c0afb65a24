"""Detoxify weights on disk: what is installed, download with progress, import from local files.

Layout, one folder per model type under ``paths.classifiers_dir()``::

    <model_type>/checkpoint.ckpt   Detoxify's own format: {"config": training config, "state_dict": ...}
    <model_type>/hf/               the base model's HF config.json + tokenizer files
    <model_type>/install.json      where it came from, and the hf/ path the checkpoint points at

Why the checkpoint is rewritten: Detoxify's ``get_model_and_tokenizer`` calls
``AutoConfig.from_pretrained(arch.args.model_type)`` — a Hub name such as "bert-base-uncased" —
even when given ``huggingface_config_path``, so offline it fails. The installed copy's
``arch.args.model_type`` points at the local ``hf/`` folder instead (re-pointed if the profile moves),
and ``hf/config.json`` carries the checkpoint's number of labels.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1desk import paths
from r1desk.fileutil import staged_folder
from r1desk.errors import ClassifierUnavailableError, DownloadError

log = logging.getLogger("r1desk.guard")

MODEL_TYPES = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")
CHECKPOINT_NAME = "checkpoint.ckpt"
HF_DIR = "hf"
INSTALL_NAME = "install.json"
# Files of the base model needed to build the model and tokenizer (never its weights).
HF_PATTERNS = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
               "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model"]
# Hub name of each model type's base model, used when the checkpoint cannot be read yet.
BASE_MODELS = {"original": "bert-base-uncased", "unbiased": "roberta-base", "multilingual": "xlm-roberta-base",
               "original-small": "albert-base-v2", "unbiased-small": "albert-base-v2"}

ProgressFn = Callable[[str, int, int | None], None]  # (what, bytes done, total or None)


@dataclass(frozen=True)
class WeightsStatus:
    model_type: str
    installed: bool
    folder: Path
    missing: tuple[str, ...]  # human-readable list of what is absent

    def message(self) -> str:
        if self.installed:
            return f"Detoxify '{self.model_type}' installed in {self.folder}"
        return (f"Detoxify '{self.model_type}' weights missing ({', '.join(self.missing)}); import them with "
                f"`r1desk classify --import-weights {self.model_type} CHECKPOINT.ckpt CONFIG_DIR` or the admin "
                f"view, or download them with `r1desk classify --download-weights {self.model_type}`")


def _check_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ClassifierUnavailableError(f"unknown Detoxify model type {model_type!r}",
                                         hint=f"one of {', '.join(MODEL_TYPES)}")


def model_folder(model_type: str, root: Path | None = None) -> Path:
    _check_type(model_type)
    return (root or paths.classifiers_dir()) / model_type


def status(model_type: str, root: Path | None = None) -> WeightsStatus:
    folder = model_folder(model_type, root)
    missing = []
    if not (folder / CHECKPOINT_NAME).is_file():
        missing.append("checkpoint")
    hf = folder / HF_DIR
    if not (hf / "config.json").is_file():
        missing.append("HF config")
    if not hf.is_dir() or not any((hf / name).is_file() for name in HF_PATTERNS[1:]):
        missing.append("tokenizer files")
    if not (folder / INSTALL_NAME).is_file() and not missing:
        missing.append("install record")
    return WeightsStatus(model_type, not missing, folder, tuple(missing))


def installed_types(root: Path | None = None) -> list[str]:
    return [t for t in MODEL_TYPES if status(t, root).installed]


def require(model_type: str, root: Path | None = None) -> tuple[Path, Path]:
    """(checkpoint, hf folder) ready for Detoxify's offline path, or ClassifierUnavailableError."""
    st = status(model_type, root)
    if not st.installed:
        raise ClassifierUnavailableError(st.message())
    folder = st.folder
    _repoint(folder)
    return folder / CHECKPOINT_NAME, folder / HF_DIR


def _require_torch() -> Any:
    """torch, or a plain error naming the extra: reading Detoxify's checkpoints is the conversion step."""
    try:
        import torch
    except ImportError:
        raise ClassifierUnavailableError(
            "reading Detoxify checkpoints needs PyTorch, which this installation does not have",
            hint="install the conversion extra (pip install 'r1desk[torch]') or import weights already "
                 "converted to ONNX") from None
    return torch


def _torch_load(path: Path) -> dict[str, Any]:
    import pickle

    torch = _require_torch()

    try:
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Weights only load failed" not in str(exc):
                raise
            # Lightning checkpoints may carry extra pickled objects; the file was chosen by an admin or
            # downloaded from Detoxify's release URL with its hash checked.
            log.warning("%s is not a weights-only checkpoint; loading it with full unpickling", path)
            loaded = torch.load(str(path), map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ClassifierUnavailableError(f"{path} is not a readable PyTorch checkpoint ({exc})") from None
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise ClassifierUnavailableError(f"{path} is not a Detoxify checkpoint (it needs 'config' and "
                                         f"'state_dict')")
    try:
        loaded["config"]["arch"]["args"]["model_type"]
        loaded["config"]["dataset"]["args"]["classes"]
    except (KeyError, TypeError):
        raise ClassifierUnavailableError(f"{path}: the checkpoint's config lacks arch.args.model_type or "
                                         f"dataset.args.classes") from None
    return loaded


def _write_checkpoint(loaded: dict[str, Any], hf_dir: Path, dest: Path) -> dict[str, Any]:
    """Save a weights-only copy whose arch.args.model_type points at ``hf_dir``; returns install info."""
    torch = _require_torch()

    config = json.loads(json.dumps(loaded["config"], default=str))
    arch = config["arch"]["args"]  # passed as **kwargs to get_model_and_tokenizer: add no keys here
    base = config.get("r1desk_base_model") or arch["model_type"]
    config["r1desk_base_model"] = base
    arch["model_type"] = str(hf_dir)
    state = {k: v for k, v in loaded["state_dict"].items()}
    tmp = dest.with_suffix(".tmp")
    torch.save({"config": config, "state_dict": state}, str(tmp))
    os.replace(tmp, dest)
    return {"base_model": base, "hf_dir": str(hf_dir),
            "classes": list(config["dataset"]["args"]["classes"]),
            "model_name": arch.get("model_name"), "tokenizer_name": arch.get("tokenizer_name")}


def _fix_hf_config(hf_dir: Path, classes: list[str]) -> None:
    """config.json must carry the checkpoint's label count (Detoxify passes the folder as config)."""
    cfg_path = hf_dir / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except ValueError as exc:          # not JSON, or not UTF-8
        cfg = exc
    if not isinstance(cfg, dict):
        raise ClassifierUnavailableError(f"config.json is not a Hugging Face model config ({cfg})")
    cfg["id2label"] = {str(i): c for i, c in enumerate(classes)}
    cfg["label2id"] = {c: i for i, c in enumerate(classes)}
    cfg.pop("num_labels", None)
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def _repoint(folder: Path) -> None:
    """Re-point the checkpoint at this folder's hf/ when the profile moved since install."""
    info_path = folder / INSTALL_NAME
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except ValueError as exc:          # not JSON, or not UTF-8
        info = exc
    if not isinstance(info, dict):
        raise ClassifierUnavailableError(f"{info_path} is damaged ({info})",
                                         hint="re-import the weights with `r1desk classify --import-weights`")
    hf_dir = folder / HF_DIR
    if info.get("hf_dir") == str(hf_dir):
        return
    log.info("re-pointing %s at %s", folder / CHECKPOINT_NAME, hf_dir)
    loaded = _torch_load(folder / CHECKPOINT_NAME)
    info.update(_write_checkpoint(loaded, hf_dir, folder / CHECKPOINT_NAME))
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")


def import_weights(model_type: str, checkpoint_file: Path, config_dir: Path, *, root: Path | None = None,
                   source: str = "import", convert: bool = False) -> WeightsStatus:
    """Install a Detoxify checkpoint + a folder with the base model's HF config/tokenizer files.

    ``convert``: also convert it to ONNX once (``onnx_export``; the ONNX scorer then needs no torch).
    A conversion that fails leaves the installed checkpoint in place and is logged."""
    folder = model_folder(model_type, root)
    checkpoint_file, config_dir = Path(checkpoint_file), Path(config_dir)
    if not checkpoint_file.is_file():
        raise ClassifierUnavailableError(f"checkpoint not found: {checkpoint_file}")
    if not (config_dir / "config.json").is_file():
        raise ClassifierUnavailableError(f"{config_dir} has no config.json (it must hold the base model's "
                                         f"HF config and tokenizer files)")
    loaded = _torch_load(checkpoint_file)
    with staged_folder(folder, prefix=f".{model_type}-") as staging:
        hf_staging = staging / HF_DIR
        hf_staging.mkdir()
        for item in config_dir.iterdir():
            if item.is_file() and item.suffix not in (".bin", ".safetensors", ".ckpt", ".h5", ".msgpack"):
                shutil.copy2(item, hf_staging / item.name)
        classes = list(loaded["config"]["dataset"]["args"]["classes"])
        _fix_hf_config(hf_staging, classes)
        info = _write_checkpoint(loaded, folder / HF_DIR, staging / CHECKPOINT_NAME)
        info.update({"model_type": model_type, "source": source, "checkpoint_file": checkpoint_file.name})
        (staging / INSTALL_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
    log.info("installed Detoxify %s weights in %s (%s)", model_type, folder, source)
    if convert:
        from r1desk.core.guard import onnx_export

        try:
            onnx_export.export(model_type, root)
        except ClassifierUnavailableError as exc:
            log.warning("Detoxify %s installed, but not converted to ONNX: %s", model_type, exc)
    return status(model_type, root)


def checkpoint_url(model_type: str) -> str:
    """The release URL from Detoxify's own constants."""
    _check_type(model_type)
    _require_torch()
    from detoxify.detoxify import MODEL_URLS

    url: str = MODEL_URLS[model_type]   # detoxify ships no types
    return url


def _download(url: str, dest: Path, progress: ProgressFn | None) -> None:
    """Stream ``url`` to ``dest`` with progress; checks the sha256 prefix in torch-hub style names."""
    expected = re.search(r"-([0-9a-f]{8,})\.", url.rsplit("/", 1)[-1])
    digest = hashlib.sha256()
    tmp = dest.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(dest.name, done, total)
    except (OSError, http.client.HTTPException) as exc:     # e.g. IncompleteRead: the connection dropped
        tmp.unlink(missing_ok=True)
        from r1desk.core.downloads import network_reason

        raise DownloadError(f"download of {url} failed: {network_reason(exc)}") from None
    if expected and not digest.hexdigest().startswith(expected.group(1)):
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} is corrupt (sha256 does not match)")
    os.replace(tmp, dest)


def download_weights(model_type: str, *, progress: ProgressFn | None = None,
                     root: Path | None = None, convert: bool = True) -> WeightsStatus:
    """Fetch Detoxify's checkpoint and the base model's config/tokenizer files, then install them."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DownloadError("downloads are disabled (HF_HUB_OFFLINE=1)",
                            hint=status(model_type, root).message())
    cache = paths.cache_dir() / "classifiers" / model_type
    cache.mkdir(parents=True, exist_ok=True)
    url = checkpoint_url(model_type)
    ckpt = cache / url.rsplit("/", 1)[-1]
    if not ckpt.is_file():
        _download(url, ckpt, progress)
    loaded_base = BASE_MODELS[model_type]
    try:
        from huggingface_hub import snapshot_download

        if progress:
            progress(f"{loaded_base} config and tokenizer", 0, None)
        hf_dir = Path(snapshot_download(loaded_base, allow_patterns=HF_PATTERNS, local_dir=cache / "hf"))
    except Exception as exc:  # huggingface_hub raises many network/HTTP error types
        raise DownloadError(f"download of the {loaded_base} config/tokenizer failed: {exc}") from None
    result = import_weights(model_type, ckpt, hf_dir, root=root, source=url, convert=convert)
    shutil.rmtree(cache, ignore_errors=True)
    return result
