"""What this machine can run: RAM (psutil) and NVIDIA GPU memory (nvidia-smi, when present).

``fit()`` labels a catalog entry for the model manager. Thresholds, in terms of the entry's
``memory_needed()`` (weights + KV cache + overhead):

* **fits**: it fits in 90 % of the GPU's free memory (runs fully offloaded), or in 80 % of the
  RAM available right now.
* **tight**: it fits, with little headroom: in the RAM available right now, in 90 % of total RAM
  (close other apps first), or in the GPU's free memory plus the available RAM together (partial offload).
* **won't fit**: anything bigger.

Every number shown is in GiB (2**30 bytes), the unit of the tooltips and the labels alike.

``expected_speed()`` estimates decoding speed the way bench/bench_guard.py bounds it: generating one
token reads every weight once, so tokens/s ≈ memory bandwidth ÷ model size. The RAM bandwidth is
measured once (a multi-threaded numpy copy, ~0.5 s) and cached per machine in ``paths.cache_dir()``;
call ``memory_bandwidth()`` off the GUI thread. ``recommend()`` weighs it: the largest model that fits
*and* answers at a usable speed.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
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
GIB = 2**30
# Below this expected speed a model is a chore to use (a 500-token answer takes over two minutes).
USABLE_TOKENS_PER_S = 4.0
# No portable way to measure a GPU's bandwidth without a GPU library: a conservative figure
# (a mid-range card; an H100 has 3000+ GB/s), so the estimate errs on the slow side.
GPU_BANDWIDTH_ESTIMATE = 250e9
# Share of the bound (bandwidth ÷ model bytes) real decoding reaches: bench/RESULTS.md measured 87 %
# (23.2 GB/s, 1.12 GB model: bound 20.8, raw 18.0 tok/s) and 110 % under load.
DECODE_EFFICIENCY = 0.85


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
    bandwidth: float | None = None      # measured RAM bandwidth, bytes/s (read + write); None: not measured

    @property
    def gpu_free(self) -> int:
        """Free memory of the best GPU (llama.cpp offloads to one device by default)."""
        return max((g.free_bytes for g in self.gpus), default=0)

    def describe(self) -> str:
        ram = f"{self.total_ram / GIB:.1f} GiB RAM ({self.available_ram / GIB:.1f} GiB free)"
        if self.bandwidth:
            ram += f", memory bandwidth {self.bandwidth / 1e9:.0f} GB/s"
        if not self.gpus:
            return ram + ", no GPU detected"
        gpus = ", ".join(f"{g.name} {g.total_bytes / GIB:.1f} GiB" for g in self.gpus)
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


GPU_PROBE_MAX_AGE_S = 3.0      # one nvidia-smi answers the callers of one moment (the model manager's two tabs)
_gpu_lock = threading.Lock()
_gpu_probe: tuple[float, tuple[GPU, ...]] | None = None


def detect_gpus(timeout: float = 5.0, *, max_age: float = GPU_PROBE_MAX_AGE_S) -> tuple[GPU, ...]:
    """NVIDIA GPUs through nvidia-smi; none when it is missing or fails (no heavy GPU libraries).

    Callers at the same moment share one probe (it takes up to a few hundred milliseconds): a result younger
    than ``max_age`` seconds is reused, and a second caller waits for the probe running instead of starting
    another. ``max_age=0`` always probes."""
    global _gpu_probe
    with _gpu_lock:
        if _gpu_probe is not None and time.monotonic() - _gpu_probe[0] < max_age:
            return _gpu_probe[1]
        gpus = _probe_gpus(timeout)
        _gpu_probe = (time.monotonic(), gpus)
        return gpus


def _probe_gpus(timeout: float) -> tuple[GPU, ...]:
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


def detect(*, bandwidth: bool = False) -> Hardware:
    """This machine's memory and GPUs; with ``bandwidth`` (the catalog's speed estimates), the cached RAM
    bandwidth too — the first such call on a machine measures it, so make it off the GUI thread."""
    memory = psutil.virtual_memory()
    return Hardware(total_ram=memory.total, available_ram=memory.available, gpus=detect_gpus(),
                    bandwidth=memory_bandwidth() if bandwidth else None)


def measure_bandwidth(size_mb: int = 256, repeats: int = 3, threads: int | None = None) -> float:
    """RAM bandwidth in bytes/s: best-of-N numpy copy of a large array over all cores (numpy releases
    the GIL), bytes read + written (as bench/bench_guard.py's ``memory_bandwidth_gbs``)."""
    import numpy as np

    threads = threads or os.cpu_count() or 1
    src = np.ones(size_mb * _MIB // 8)
    dst = np.zeros_like(src)                  # touched now, so page faults are not timed
    step = -(-src.size // threads)
    bounds = [(lo, min(lo + step, src.size)) for lo in range(0, src.size, step)]

    def copy(lo: int, hi: int) -> None:
        np.copyto(dst[lo:hi], src[lo:hi])

    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=copy, args=b, name="r1desk-bandwidth") for b in bounds]
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / max(best, 1e-9)


_BANDWIDTH_FILE = "memory-bandwidth.json"
_bandwidth_lock = threading.Lock()
_bandwidth: dict[str, float] = {}


def _machine_key() -> str:
    return f"{os.cpu_count()}cpu-{psutil.virtual_memory().total}"


def memory_bandwidth(*, refresh: bool = False) -> float | None:
    """The RAM bandwidth (bytes/s), measured once per machine and cached (in memory and in
    ``paths.cache_dir()``); None when it cannot be measured."""
    from r1desk import paths

    key = _machine_key()
    with _bandwidth_lock:
        if not refresh and key in _bandwidth:
            return _bandwidth[key]
        cache = paths.cache_dir() / _BANDWIDTH_FILE
        if not refresh:
            try:
                data = json.loads(cache.read_text(encoding="utf-8"))
                value = data.get(key) if isinstance(data, dict) else None
                if isinstance(value, (int, float)) and value > 0:
                    _bandwidth[key] = float(value)
                    return float(value)
            except (OSError, ValueError):
                pass
        try:
            value = measure_bandwidth()
        except (MemoryError, OSError, RuntimeError) as exc:
            log.info("memory bandwidth not measured: %s", exc)
            return None
        _bandwidth[key] = value
        try:
            cache.write_text(json.dumps({key: value}), encoding="utf-8")
        except OSError as exc:
            log.info("memory bandwidth not cached: %s", exc)
        log.info("memory bandwidth %.1f GB/s", value / 1e9)
        return value


@dataclass(frozen=True)
class Speed:
    """Expected decoding speed: the bandwidth bound (bench_guard's physical limit) × an efficiency."""

    tokens_per_s: float
    basis: str                  # "gpu" (typical GPU bandwidth) | "ram" (measured RAM bandwidth)

    @property
    def usable(self) -> bool:
        return self.tokens_per_s >= USABLE_TOKENS_PER_S

    def describe(self) -> str:
        where = "on the GPU, typical bandwidth" if self.basis == "gpu" else "from this computer's memory bandwidth"
        return f"about {self.tokens_per_s:.0f} tokens/s ({where})" if self.tokens_per_s >= 10 else \
            f"about {self.tokens_per_s:.1f} tokens/s ({where})"

    def short(self) -> str:
        return f"~{self.tokens_per_s:.0f} tok/s" if self.tokens_per_s >= 10 else f"~{self.tokens_per_s:.1f} tok/s"


def expected_speed(size_bytes: int, need: int, hw: Hardware) -> Speed | None:
    """Tokens/s to expect from a model of ``size_bytes`` (``need`` bytes to run): each token reads
    every weight once, so bandwidth ÷ size. On the GPU when it fits there, else RAM; None when the
    RAM bandwidth is unknown."""
    if size_bytes <= 0:
        return None
    if hw.gpu_free and need <= GPU_FITS_FRACTION * hw.gpu_free:
        return Speed(GPU_BANDWIDTH_ESTIMATE * DECODE_EFFICIENCY / size_bytes, "gpu")
    if not hw.bandwidth:
        return None
    return Speed(hw.bandwidth * DECODE_EFFICIENCY / size_bytes, "ram")


def entry_speed(entry: CatalogEntry, hw: Hardware, n_ctx: int | None = None) -> Speed | None:
    from r1desk.core.catalog import DEFAULT_CONTEXT

    return expected_speed(entry.size_bytes, entry.memory_needed(n_ctx or DEFAULT_CONTEXT), hw)


def fit(entry: CatalogEntry, hw: Hardware, n_ctx: int | None = None) -> Fit:
    """Label an entry "fits", "tight" or "won't fit" for this machine (thresholds: module doc)."""
    from r1desk.core.catalog import DEFAULT_CONTEXT

    return fit_bytes(entry.memory_needed(n_ctx or DEFAULT_CONTEXT), hw)


def fit_bytes(need: int, hw: Hardware) -> Fit:
    """The fit label for ``need`` bytes (weights + KV cache + overhead), thresholds as for ``fit``."""
    gpu_free = hw.gpu_free
    if (gpu_free and need <= GPU_FITS_FRACTION * gpu_free) or need <= RAM_FITS_FRACTION * hw.available_ram:
        return FITS
    if (need <= hw.available_ram or need <= RAM_TIGHT_FRACTION * hw.total_ram
            or (gpu_free and need <= gpu_free + hw.available_ram)):
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


def recommend(entries: list[CatalogEntry], hw: Hardware, n_ctx: int | None = None) -> CatalogEntry | None:
    """The variant to suggest: the largest model that fits and runs at a usable speed, at the leanest
    good quant (Q4_K_M first).

    A bigger model at Q4_K_M beats a smaller one at Q8_0 for reasoning — unless it crawls: with a known
    speed, models below ``USABLE_TOKENS_PER_S`` are passed over (the fastest fitting one is taken when
    none is usable). When nothing fits, the smallest "tight" entry; None when even that won't fit.
    """
    fitting = [e for e in entries if fit(e, hw, n_ctx) == FITS]
    if fitting:
        speeds = {e.id: entry_speed(e, hw, n_ctx) for e in fitting}
        usable = [e for e in fitting if (s := speeds[e.id]) is None or s.usable]
        if not usable:
            return max(fitting, key=lambda e: (_tps(speeds[e.id]), -_QUANT_PREFERENCE.get(e.quantization, 9)))
        return max(usable, key=lambda e: (e.model.parameters, -_QUANT_PREFERENCE.get(e.quantization, 9)))
    tight = [e for e in entries if fit(e, hw, n_ctx) == TIGHT]
    return min(tight, key=lambda e: e.memory_needed(n_ctx or _default_ctx())) if tight else None


def _tps(speed: Speed | None) -> float:
    return speed.tokens_per_s if speed else 0.0


def _default_ctx() -> int:
    from r1desk.core.catalog import DEFAULT_CONTEXT

    return DEFAULT_CONTEXT


@dataclass(frozen=True)
class Assessment:
    """One catalog entry judged for this machine: what the model manager and `r1desk models catalog` show."""

    entry: CatalogEntry
    fit: Fit
    memory_needed: int
    speed: Speed | None
    recommended: bool

    def reason(self, hw: Hardware) -> str:
        """The fit label in words, with the numbers it was decided from (all GiB)."""
        need = f"Needs about {self.memory_needed / GIB:.1f} GiB; {hw.describe()}."
        verdict = {FITS: "It fits comfortably.",
                   TIGHT: "It fits with little headroom: close other programs first, it may crowd them.",
                   WONT_FIT: "It is too large for this computer."}[self.fit]
        speed = f" Expected speed: {self.speed.describe()}." if self.speed else ""
        if self.speed is not None and not self.speed.usable and self.fit != WONT_FIT:
            speed += " That is slow for chat."
        return f"{need} {verdict}{speed}"

    def to_dict(self) -> dict[str, object]:
        return {**self.entry.to_dict(), "fit": self.fit, "memory_needed": self.memory_needed,
                "memory_needed_gib": round(self.memory_needed / GIB, 2),
                "size_gib": round(self.entry.size_bytes / GIB, 2),
                "tokens_per_s": round(self.speed.tokens_per_s, 2) if self.speed else None,
                "speed_basis": self.speed.basis if self.speed else None, "recommended": self.recommended}


def assess(entries: list[CatalogEntry], hw: Hardware, n_ctx: int | None = None) -> list[Assessment]:
    """Every entry with its fit label, memory, expected speed and whether it is the ★ recommendation."""
    ctx = n_ctx or _default_ctx()
    pick = recommend(entries, hw, n_ctx)
    return [Assessment(entry=e, fit=fit(e, hw, ctx), memory_needed=e.memory_needed(ctx),
                       speed=entry_speed(e, hw, ctx), recommended=pick is not None and e.id == pick.id)
            for e in entries]
