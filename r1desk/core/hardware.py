"""What this machine can run: RAM (psutil) and NVIDIA GPU memory (nvidia-smi, when present).

``fit()`` labels a catalog entry for the model manager. Thresholds, in terms of the entry's
``memory_needed()`` (weights + KV cache + overhead):

* **fits**: it fits in 90 % of the GPU's free memory (runs fully offloaded), or in 80 % of the
  RAM available right now.
* **tight**: it fits in 90 % of total RAM (close other apps first), or in the GPU's free memory
  plus the available RAM together (partial offload).
* **won't fit**: anything bigger.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import psutil

if TYPE_CHECKING:
    from r1desk.core.catalog import CatalogEntry
    from r1desk.core.gguf_info import ModelInfo

log = logging.getLogger("r1desk.models")

Fit = Literal["fits", "tight", "won't fit"]
FITS: Fit = "fits"
TIGHT: Fit = "tight"
WONT_FIT: Fit = "won't fit"

RAM_FITS_FRACTION = 0.8
RAM_TIGHT_FRACTION = 0.9
GPU_FITS_FRACTION = 0.9
_MIB = 1024 * 1024


@dataclass(frozen=True)
class GPU:
    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Hardware:
    total_ram: int
    available_ram: int
    gpus: tuple[GPU, ...] = ()

    @property
    def gpu_free(self) -> int:
        """Free memory of the best GPU (llama.cpp offloads to one device by default)."""
        return max((g.free_bytes for g in self.gpus), default=0)

    def describe(self) -> str:
        ram = f"{self.total_ram / 2**30:.1f} GiB RAM ({self.available_ram / 2**30:.1f} GiB free)"
        if not self.gpus:
            return ram + ", no GPU detected"
        gpus = ", ".join(f"{g.name} {g.total_bytes / 2**30:.1f} GiB" for g in self.gpus)
        return f"{ram}, {gpus}"


def parse_nvidia_smi(output: str) -> tuple[GPU, ...]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits``."""
    gpus: list[GPU] = []
    for line in output.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        try:
            total, free = int(float(parts[1])) * _MIB, int(float(parts[2])) * _MIB
        except ValueError:
            continue
        gpus.append(GPU(name=parts[0], total_bytes=total, free_bytes=free))
    return tuple(gpus)


def detect_gpus(timeout: float = 5.0) -> tuple[GPU, ...]:
    """NVIDIA GPUs through nvidia-smi; none when it is missing or fails (no heavy GPU libraries)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    try:
        result = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("nvidia-smi failed: %s", exc)
        return ()
    if result.returncode != 0:
        log.info("nvidia-smi exited %s: %s", result.returncode, result.stderr.strip())
        return ()
    return parse_nvidia_smi(result.stdout)


def detect() -> Hardware:
    memory = psutil.virtual_memory()
    return Hardware(total_ram=memory.total, available_ram=memory.available, gpus=detect_gpus())


def fit(entry: CatalogEntry, hw: Hardware, n_ctx: int | None = None) -> Fit:
    """Label an entry "fits", "tight" or "won't fit" for this machine (thresholds: module doc)."""
    from r1desk.core.catalog import DEFAULT_CONTEXT

    return fit_bytes(entry.memory_needed(n_ctx or DEFAULT_CONTEXT), hw)


def fit_bytes(need: int, hw: Hardware) -> Fit:
    """The fit label for ``need`` bytes (weights + KV cache + overhead), thresholds as for ``fit``."""
    gpu_free = hw.gpu_free
    if (gpu_free and need <= GPU_FITS_FRACTION * gpu_free) or need <= RAM_FITS_FRACTION * hw.available_ram:
        return FITS
    if need <= RAM_TIGHT_FRACTION * hw.total_ram or (gpu_free and need <= gpu_free + hw.available_ram):
        return TIGHT
    return WONT_FIT


def model_memory_needed(info: ModelInfo, n_ctx: int) -> int:
    """Bytes to run a GGUF file with an ``n_ctx``-token context: the catalog's estimate (weights +
    f16 KV cache + overhead), the KV cache from the file's own attention shape."""
    from r1desk.core.catalog import _OVERHEAD_FIXED, _OVERHEAD_FRACTION

    kv = (info.kv_bytes_per_token or 0) * max(n_ctx, 0)
    return info.size_bytes + kv + _OVERHEAD_FIXED + int(info.size_bytes * _OVERHEAD_FRACTION)


def fit_model(info: ModelInfo, hw: Hardware, n_ctx: int) -> tuple[Fit, int]:
    """(fit label, bytes needed) for a GGUF file at a context size, thresholds as for ``fit``."""
    need = model_memory_needed(info, n_ctx)
    return fit_bytes(need, hw), need


_QUANT_PREFERENCE = {"Q4_K_M": 0, "Q5_K_M": 1, "Q8_0": 2, "F16": 3}


def recommend(entries: list[CatalogEntry], hw: Hardware) -> CatalogEntry | None:
    """The variant to suggest: the largest model that fits, at the leanest good quant (Q4_K_M first).

    A bigger model at Q4_K_M beats a smaller one at Q8_0 for reasoning. When nothing fits, the
    smallest "tight" entry; None when even that won't fit.
    """
    fitting = [e for e in entries if fit(e, hw) == FITS]
    if fitting:
        return max(fitting, key=lambda e: (e.model.parameters, -_QUANT_PREFERENCE.get(e.quantization, 9)))
    tight = [e for e in entries if fit(e, hw) == TIGHT]
    return min(tight, key=lambda e: e.memory_needed()) if tight else None
