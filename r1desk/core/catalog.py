"""The models r1desk offers to download: the DeepSeek-R1 distills in common quantisations.

DeepSeek-R1-0528-Qwen3-8B (May 2025, the newest distill) has its own usage recommendations (a system
prompt is accepted, no forced ``<think>``); core.prompts.model_recipe detects it from the file itself.

Files come from bartowski's GGUF conversions on Hugging Face (llama.cpp imatrix quants, one file
per quantisation up to 50 GB). Sizes are the published sizes rounded to 10 MB, so they are marked
``size_is_estimate``: the downloader always takes the exact size and the LFS sha256 from the Hub
before it starts. Memory needed = file + KV cache for the default context + runtime overhead.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CONTEXT = 4096
# llama.cpp's compute buffers and the runtime, beyond the weights and the KV cache.
_OVERHEAD_FIXED = 300 * 1024 * 1024
_OVERHEAD_FRACTION = 0.05

# Bits per weight of each quantisation, averaged over a whole llama/qwen2 file (used for estimates).
BITS_PER_WEIGHT = {"Q4_K_M": 4.85, "Q5_K_M": 5.69, "Q6_K": 6.59, "Q8_0": 8.5, "F16": 16.0}


@dataclass(frozen=True)
class BaseModel:
    """One distill: its parameter count and the attention shape that sizes the KV cache."""

    key: str
    title: str
    family: str                 # "Qwen" | "Llama"
    parameters: int
    layers: int
    kv_heads: int
    head_dim: int
    hf_repo: str
    file_stem: str
    max_context: int

    def kv_cache_bytes(self, n_ctx: int = DEFAULT_CONTEXT) -> int:
        """f16 K and V for every layer: 2 × layers × kv_heads × head_dim × 2 bytes per position."""
        return 2 * self.layers * self.kv_heads * self.head_dim * 2 * n_ctx


@dataclass(frozen=True)
class CatalogEntry:
    model: BaseModel
    quantization: str
    size_bytes: int
    size_is_estimate: bool = True
    sha256: str | None = None   # None: taken from the Hub's LFS metadata at download time
    recommended_quant: bool = False

    @property
    def id(self) -> str:
        return f"{self.model.key}-{self.quantization}".lower()

    @property
    def repo_id(self) -> str:
        return self.model.hf_repo

    @property
    def filename(self) -> str:
        return f"{self.model.file_stem}-{self.quantization}.gguf"

    @property
    def title(self) -> str:
        return f"{self.model.title} · {self.quantization}"

    def memory_needed(self, n_ctx: int = DEFAULT_CONTEXT) -> int:
        """Bytes of RAM (or VRAM) to run it: weights + KV cache + overhead."""
        return (self.size_bytes + self.model.kv_cache_bytes(n_ctx) + _OVERHEAD_FIXED
                + int(self.size_bytes * _OVERHEAD_FRACTION))

    def to_dict(self, n_ctx: int = DEFAULT_CONTEXT) -> dict[str, object]:
        return {
            "id": self.id, "title": self.title, "family": self.model.family,
            "parameters": self.model.parameters, "quantization": self.quantization,
            "repo_id": self.repo_id, "filename": self.filename, "size_bytes": self.size_bytes,
            "size_is_estimate": self.size_is_estimate, "sha256": self.sha256,
            "memory_needed": self.memory_needed(n_ctx), "context": n_ctx,
        }


def estimate_size(parameters: int, quantization: str) -> int:
    """File size from parameter count × bits per weight (for quants without a published size)."""
    return int(parameters * BITS_PER_WEIGHT[quantization] / 8)


def _model(key: str, title: str, family: str, parameters: int, layers: int, kv_heads: int,
           max_context: int) -> BaseModel:
    stem = f"DeepSeek-R1-Distill-{title.replace(' ', '-')}"
    return BaseModel(key=key, title=f"DeepSeek-R1 Distill {title}", family=family,
                     parameters=parameters, layers=layers, kv_heads=kv_heads, head_dim=128,
                     hf_repo=f"bartowski/{stem}-GGUF", file_stem=stem, max_context=max_context)


QWEN3_8B_0528 = BaseModel(
    key="r1-0528-qwen3-8b", title="DeepSeek-R1-0528 Qwen3 8B", family="Qwen",
    parameters=8_190_735_360, layers=36, kv_heads=8, head_dim=128,
    hf_repo="bartowski/deepseek-ai_DeepSeek-R1-0528-Qwen3-8B-GGUF",
    file_stem="deepseek-ai_DeepSeek-R1-0528-Qwen3-8B", max_context=131072)
QWEN_1_5B = _model("r1-qwen-1.5b", "Qwen 1.5B", "Qwen", 1_777_088_000, 28, 2, 131072)
QWEN_7B = _model("r1-qwen-7b", "Qwen 7B", "Qwen", 7_615_616_512, 28, 4, 131072)
LLAMA_8B = _model("r1-llama-8b", "Llama 8B", "Llama", 8_030_261_248, 32, 8, 131072)
QWEN_14B = _model("r1-qwen-14b", "Qwen 14B", "Qwen", 14_770_033_664, 48, 8, 131072)
QWEN_32B = _model("r1-qwen-32b", "Qwen 32B", "Qwen", 32_763_876_352, 64, 8, 131072)
LLAMA_70B = _model("r1-llama-70b", "Llama 70B", "Llama", 70_553_706_496, 80, 8, 131072)
BASE_MODELS = (QWEN_1_5B, QWEN_7B, LLAMA_8B, QWEN3_8B_0528, QWEN_14B, QWEN_32B, LLAMA_70B)

_GB = 1_000_000_000
# Published file sizes (decimal GB, as the Hub lists them); Llama 70B Q8_0 (75 GB) ships split
# in two parts, which the single-file downloader does not handle, so it is left out.
_PUBLISHED = {
    QWEN_1_5B: {"Q4_K_M": 1.12, "Q5_K_M": 1.29, "Q8_0": 1.89, "F16": 3.56},
    QWEN_7B: {"Q4_K_M": 4.68, "Q5_K_M": 5.44, "Q8_0": 8.10, "F16": 15.24},
    LLAMA_8B: {"Q4_K_M": 4.92, "Q5_K_M": 5.73, "Q8_0": 8.54, "F16": 16.07},
    QWEN3_8B_0528: {"Q4_K_M": 5.03, "Q5_K_M": 5.85, "Q8_0": 8.71},
    QWEN_14B: {"Q4_K_M": 8.99, "Q5_K_M": 10.51, "Q8_0": 15.70},
    QWEN_32B: {"Q4_K_M": 19.85, "Q5_K_M": 23.26, "Q8_0": 34.82},
    LLAMA_70B: {"Q4_K_M": 42.52, "Q5_K_M": 49.95},
}

CATALOG: tuple[CatalogEntry, ...] = tuple(
    CatalogEntry(model=model, quantization=quant, size_bytes=int(gb * _GB),
                 recommended_quant=(quant == "Q4_K_M"))
    for model, quants in _PUBLISHED.items() for quant, gb in quants.items()
)


def entries() -> list[CatalogEntry]:
    return list(CATALOG)


def get_entry(entry_id: str) -> CatalogEntry:
    from r1desk.errors import UserFacingError

    for entry in CATALOG:
        if entry.id == entry_id.lower():
            return entry
    raise UserFacingError(f"no catalog model named {entry_id!r}",
                          hint="`r1desk models catalog` lists them")
