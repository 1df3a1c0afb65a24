"""Guard models on this computer: the catalog of each profile, fit, download, import, listing, removal.

The guard-model GGUFs live in ``paths.guard_models_dir()``, apart from the chat models (neither list
shows the other's files). Choosing the one in use is a settings change (``guard.harm_model``), made by
the settings layer (``r1desk.guard_admin``), never here.

    offers()                     every profile's catalog entries, each with an id ("llama-guard-3-1b-q4_k_m")
    get_offer(id)                one of them (UserFacingError naming the ids)
    fit(offer, hw, n_ctx)        "fits" | "tight" | "won't fit" (core.hardware thresholds, estimated need)
    check_guard_model(path)      InstalledGuard, or ModelFileError: "not a supported guard model"
    download(offer, ...)         core.downloads (progress, resume, checksum, cancel) into the folder
    import_file(path)            validate, then hard-link or copy into the folder
    installed()                  the guard models in the folder
    remove(path)                 delete one of them (only inside the folder)
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1desk import paths
from r1desk.core import downloads, hardware
from r1desk.core.gguf_info import ModelInfo, read_model_info, shown_text
from r1desk.core.guard.harm.profiles import PROFILES, CatalogEntry, GuardProfile, detect_profile
from r1desk.errors import DownloadError, ModelFileError, UserFacingError

log = logging.getLogger("r1desk.guard.harm")

DEFAULT_CONTEXT = 4096
SUPPORTED = "Qwen3Guard-Gen, Llama Guard 3 or Granite Guardian 3.x"
# f16 K+V bytes per context position of each original model (layers × kv_heads × head_dim × 2 × 2),
# for the memory estimate; other models: the fallback.
_KV_PER_TOKEN = {
    "Qwen/Qwen3Guard-Gen-0.6B": 28 * 8 * 128 * 4,
    "Qwen/Qwen3Guard-Gen-4B": 36 * 8 * 128 * 4,
    "meta-llama/Llama-Guard-3-1B": 16 * 8 * 64 * 4,
    "ibm-granite/granite-guardian-3.0-2b": 40 * 8 * 64 * 4,
}
_KV_FALLBACK = 128 * 1024
_OVERHEAD_FIXED = 300 * 1024 * 1024       # as core.catalog: llama.cpp's buffers and the runtime
_OVERHEAD_FRACTION = 0.05


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class GuardOffer:
    """One catalog entry of a guard-model profile, as the model manager and the CLI list it."""

    id: str
    profile: GuardProfile
    entry: CatalogEntry

    @property
    def downloadable(self) -> bool:
        """A public GGUF exists; otherwise the only way in is importing a converted file."""
        return bool(self.entry.hf_repo and self.entry.filename)

    @property
    def local_path(self) -> Path | None:
        """The downloaded file, when it is in the guard-models folder."""
        if not self.entry.filename:
            return None
        path = paths.guard_models_dir() / Path(self.entry.filename).name
        return path if path.is_file() else None

    @property
    def partial(self) -> bool:
        """A partial download exists (the next download resumes it)."""
        if not self.entry.filename:
            return False
        name = Path(self.entry.filename).name
        return any(p.name.startswith(name + ".") for p in downloads.partial_downloads(paths.guard_models_dir()))

    def memory_needed(self, n_ctx: int = DEFAULT_CONTEXT) -> int:
        """Estimated bytes to run it: the file + f16 KV cache + overhead."""
        size = self.entry.approx_bytes
        kv = _KV_PER_TOKEN.get(self.entry.source_repo, _KV_FALLBACK) * max(n_ctx, 0)
        return size + kv + _OVERHEAD_FIXED + int(size * _OVERHEAD_FRACTION)

    def to_dict(self, n_ctx: int = DEFAULT_CONTEXT) -> dict[str, Any]:
        e = self.entry
        local = self.local_path
        return {"id": self.id, "label": e.label, "profile": self.profile.id, "model": self.profile.name,
                "quantization": e.quant, "size_bytes": e.approx_bytes, "size_is_estimate": e.size_is_estimate,
                "memory_needed": self.memory_needed(n_ctx), "source_repo": e.source_repo,
                "hf_repo": e.hf_repo, "filename": e.filename, "downloadable": self.downloadable,
                "licence": self.profile.licence, "licence_url": self.profile.licence_url, "note": e.note,
                "local_path": str(local) if local else None}


def offers() -> list[GuardOffer]:
    return [GuardOffer(_slug(entry.label.replace("·", " ")), profile, entry)
            for profile in PROFILES.values() for entry in profile.catalog]


def get_offer(offer_id: str) -> GuardOffer:
    for offer in offers():
        if offer.id == offer_id:
            return offer
    raise UserFacingError(f"no guard model {offer_id!r} in the catalog",
                          hint="one of: " + ", ".join(o.id for o in offers()))


def fit(offer: GuardOffer, hw: hardware.Hardware, n_ctx: int = DEFAULT_CONTEXT) -> hardware.Fit:
    return hardware.fit_bytes(offer.memory_needed(n_ctx), hw)


@dataclass(frozen=True)
class InstalledGuard:
    """A GGUF that is a supported guard model."""

    path: Path
    info: ModelInfo
    profile: GuardProfile

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.info.name, "profile": self.profile.id,
                "model": self.profile.name, "architecture": self.info.architecture,
                "quantization": self.info.quantization, "size_bytes": self.info.size_bytes,
                "licence": self.profile.licence, "licence_url": self.profile.licence_url}


def check_guard_model(path: str | os.PathLike[str]) -> InstalledGuard:
    """The file's guard profile, or ModelFileError saying plainly why it cannot be the harm filter."""
    info = read_model_info(path)               # a bad GGUF: its own ModelFileError
    name = Path(info.path).name
    profile = detect_profile(info.name, info.chat_template)
    if profile is None:
        what = "a DeepSeek-R1 chat model" if info.is_r1 else f"a {info.architecture} model"
        raise ModelFileError(f"{name} is not a supported guard model: it is {what} "
                             f"({shown_text(info.name, 60)}), not {SUPPORTED}",
                             hint="a chat model cannot judge harm: choose a guard model "
                                  "(the Safety models tab, or r1desk models guard list)")
    if info.architecture not in profile.architectures:
        raise ModelFileError(f"{name} looks like {profile.name} but is a {info.architecture} model "
                             f"({profile.name} is {', '.join(sorted(profile.architectures))})")
    usable_template = info.chat_template is not None and not info.chat_template_problem
    if profile.builtin_template is None and not usable_template:
        raise ModelFileError(f"{name} carries no usable chat template, and {profile.name} needs its own",
                             hint=info.chat_template_problem)
    return InstalledGuard(Path(info.path), info, profile)


def installed() -> list[InstalledGuard]:
    """The usable guard models in the guard-models folder (unusable files are logged and skipped)."""
    found: list[InstalledGuard] = []
    for path in sorted(paths.guard_models_dir().glob("*.gguf")):
        try:
            found.append(check_guard_model(path))
        except UserFacingError as exc:
            log.info("skipping %s: %s", path, exc)
    return found


def download(offer: GuardOffer, *, progress: downloads.ProgressCallback | None = None,
             cancel: threading.Event | None = None, endpoint: str | None = None) -> InstalledGuard:
    """Download (resume, checksum, cancel: core.downloads) into the guard-models folder, then check it."""
    if not offer.downloadable:
        raise UserFacingError(f"{offer.entry.label} has no public GGUF to download",
                              hint=offer.entry.note or "convert it with llama.cpp and import the GGUF file")
    assert offer.entry.hf_repo is not None and offer.entry.filename is not None
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None     # read now, not at huggingface_hub's import
    path = downloads.download(offer.entry.hf_repo, offer.entry.filename, progress=progress, cancel=cancel,
                              endpoint=endpoint, dest_dir=paths.guard_models_dir())
    try:
        return check_guard_model(path)
    except ModelFileError as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"the downloaded {path.name} cannot be used: {exc.message}",
                            hint="the file was deleted") from exc


def import_file(path: str | os.PathLike[str], *, link: bool = True) -> InstalledGuard:
    """Refuse anything but a supported guard model (nothing copied), then hard-link or copy it in."""
    check_guard_model(path)
    dest = downloads.import_local(path, dest_dir=paths.guard_models_dir(), link=link)
    return check_guard_model(dest)


def in_folder(path: str | os.PathLike[str]) -> bool:
    try:
        return Path(path).resolve().parent == paths.guard_models_dir().resolve()
    except OSError:
        return False


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a guard model from the guard-models folder (files elsewhere are never deleted)."""
    target = Path(path)
    if not in_folder(target) or target.suffix.lower() != ".gguf":
        raise UserFacingError(f"{target} is not in r1desk's guard-models folder ({paths.guard_models_dir()})",
                              hint="r1desk deletes only the guard models it downloaded or imported")
    try:
        target.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserFacingError(f"could not delete {target.name}: {exc.strerror or exc}") from exc
    log.info("removed guard model %s", target)
