"""Thin glue from the model manager to core.catalog / core.hardware / core.downloads (Qt-free).

Everything here runs off the GUI thread (through tasks.run_task). It only reshapes what the core
returns into rows for the tables; fit labels, paths, checksums and resume are the core's.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1desk import paths
from r1desk.errors import UserFacingError

if TYPE_CHECKING:
    from r1desk.core.gguf_info import ModelInfo

log = logging.getLogger("r1desk.ui.models")

_imported: dict[str, ModelInfo] = {}       # files imported in place this session (path -> ModelInfo)


@dataclass(frozen=True)
class CatalogRow:
    key: str
    title: str
    quant: str
    size_bytes: int | None
    memory_bytes: int | None
    fit: str                 # fits | tight | wont_fit | unknown
    fit_reason: str
    local_path: str | None
    entry: Any               # the core catalog entry, handed back to core.downloads
    recommended: bool = False
    partial: bool = False    # a partial download exists: the button says Resume
    speed: str = "—"         # expected tokens/s, short ("~8.5 tok/s")
    speed_reason: str = ""


def _core(name: str) -> Any:
    try:
        return importlib.import_module(f"r1desk.core.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"r1desk.core.{name}":
            raise UserFacingError(f"the {name} module is not installed in this build") from exc
        raise


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return default


def machine_and_catalog(n_ctx: int | None = None) -> tuple[Any, list[CatalogRow]]:
    """This machine's memory (and measured bandwidth, cached) and the R1 catalog labelled fits/tight/won't
    fit with an expected speed (core.hardware.assess decides; `r1desk models catalog` shows the same)."""
    hardware = _core("hardware")
    catalog = _core("catalog")
    downloads = _core("downloads")
    machine = hardware.detect(bandwidth=True)
    partial = {p.name.split(".gguf")[0] for p in downloads.partial_downloads()}
    rows: list[CatalogRow] = []
    for a in hardware.assess(catalog.entries(), machine, n_ctx):
        entry = a.entry
        local = paths.models_dir() / entry.filename
        fit = {"fits": "fits", "tight": "tight"}.get(str(a.fit), "wont_fit")
        rows.append(CatalogRow(
            key=entry.id, title=entry.model.title, quant=entry.quantization, size_bytes=entry.size_bytes,
            memory_bytes=a.memory_needed, fit=fit, fit_reason=a.reason(machine),
            local_path=str(local) if local.is_file() else None, entry=entry,
            recommended=a.recommended, partial=Path(entry.filename).stem in partial,
            speed=a.speed.short() if a.speed else "—",
            speed_reason=a.speed.describe() if a.speed else "Speed unknown: memory bandwidth not measured"))
    return machine, rows


def describe_machine(machine: Any) -> str:
    if hasattr(machine, "describe"):
        return str(machine.describe())
    ram = _field(machine, "ram_bytes", "total_ram", default=0) or 0
    gpu = _field(machine, "gpu_name", default=None)
    vram = _field(machine, "vram_bytes", "gpu_memory_bytes", default=0) or 0
    text = f"This computer: {ram / 2**30:.0f} GiB memory"
    text += f" · {gpu} ({vram / 2**30:.0f} GiB)" if gpu else " · no GPU found"
    return text


def download(row: CatalogRow, *, progress: Callable[[Any], None], cancel: Any) -> Path:
    """huggingface_hub download through core.downloads (disk space, resume, checksum are its job)."""
    dest: Path = _core("downloads").download_entry(row.entry, progress=progress, cancel=cancel)
    return dest


def import_model(path: str) -> ModelInfo:
    """Validate, then add to the models folder (core.downloads.import_local); returns its ModelInfo.

    A bad file raises ModelFileError before anything is copied."""
    from r1desk.core.gguf_info import read_model_info

    read_model_info(path)                      # validate first, with the file's own error
    dest = _core("downloads").import_local(path)
    info = read_model_info(dest)
    _imported[str(info.path)] = info
    return info


def local_models() -> list[ModelInfo]:
    """Models on this computer: r1desk's models folder, files imported in place, the last model."""
    from r1desk.core.gguf_info import read_model_info

    found: dict[str, ModelInfo] = {}
    candidates = sorted(paths.models_dir().glob("**/*.gguf"))
    for path in candidates:
        try:
            found[str(path)] = read_model_info(path)
        except UserFacingError as exc:
            log.info("skipping %s: %s", path, exc)
    for imported, info in _imported.items():
        if Path(imported).is_file():
            found.setdefault(imported, info)
    return list(found.values())
