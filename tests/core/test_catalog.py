"""The model catalog, memory estimates and the fit-for-this-machine labels."""
from __future__ import annotations

import re

import pytest

from r1desk.core import catalog, hardware
from r1desk.core.catalog import CATALOG, QWEN_7B, estimate_size, get_entry
from r1desk.core.hardware import GPU, Hardware, fit, parse_nvidia_smi, recommend
from r1desk.errors import UserFacingError

GiB = 2**30


def test_catalog_covers_the_distills_in_common_quants():
    models = {e.model.key for e in CATALOG}
    assert models == {"r1-qwen-1.5b", "r1-qwen-7b", "r1-qwen-14b", "r1-qwen-32b", "r1-llama-8b",
                      "r1-llama-70b", "r1-0528-qwen3-8b"}
    for key in models - {"r1-llama-70b"}:
        assert {"Q4_K_M", "Q5_K_M", "Q8_0"} <= {e.quantization for e in CATALOG if e.model.key == key}
    assert len({e.id for e in CATALOG}) == len(CATALOG)


def test_entries_name_real_repos_and_files():
    entry = get_entry("r1-qwen-7b-q4_k_m")
    assert entry.repo_id == "bartowski/DeepSeek-R1-Distill-Qwen-7B-GGUF"
    assert entry.filename == "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"
    assert get_entry("R1-LLAMA-8B-Q8_0").filename == "DeepSeek-R1-Distill-Llama-8B-Q8_0.gguf"
    newest = get_entry("r1-0528-qwen3-8b-q4_k_m")
    assert newest.repo_id == "bartowski/deepseek-ai_DeepSeek-R1-0528-Qwen3-8B-GGUF"
    assert newest.filename == "deepseek-ai_DeepSeek-R1-0528-Qwen3-8B-Q4_K_M.gguf"
    for e in CATALOG:
        assert re.fullmatch(r"bartowski/(DeepSeek-R1-Distill-(Qwen|Llama)-[\d.]+B|deepseek-ai_DeepSeek-R1-0528-Qwen3-8B)"
                            r"-GGUF", e.repo_id)
        assert e.filename.endswith(f"-{e.quantization}.gguf") and "/" not in e.filename


def test_unknown_entry_is_a_user_facing_error():
    with pytest.raises(UserFacingError, match="no catalog model named 'gpt-5'"):
        get_entry("gpt-5")


def test_sizes_agree_with_parameter_count_times_bits_per_weight():
    for e in CATALOG:
        assert e.size_is_estimate
        assert abs(e.size_bytes - estimate_size(e.model.parameters, e.quantization)) / e.size_bytes < 0.05


def test_bigger_quant_and_bigger_model_need_more_memory():
    by_id = {e.id: e for e in CATALOG}
    assert by_id["r1-qwen-7b-q4_k_m"].memory_needed() < by_id["r1-qwen-7b-q8_0"].memory_needed()
    assert by_id["r1-qwen-7b-q4_k_m"].memory_needed() < by_id["r1-qwen-14b-q4_k_m"].memory_needed()
    entry = by_id["r1-qwen-7b-q4_k_m"]
    assert entry.memory_needed(32768) - entry.memory_needed(4096) == QWEN_7B.kv_cache_bytes(28672)


def test_kv_cache_formula():
    # Qwen2.5-Math-7B: 28 layers, 4 KV heads of 128 → 224 MiB of f16 K+V at 4096 positions.
    assert QWEN_7B.kv_cache_bytes(4096) == 224 * 2**20


def test_memory_needed_includes_file_kv_and_overhead():
    entry = get_entry("r1-qwen-1.5b-q4_k_m")
    need = entry.memory_needed()
    assert need > entry.size_bytes + entry.model.kv_cache_bytes()
    assert need < entry.size_bytes * 1.5
    assert entry.to_dict()["memory_needed"] == need


# -- fit ------------------------------------------------------------------------------------------
SEVEN_B = get_entry("r1-qwen-7b-q4_k_m")      # needs ~5.3 GB


@pytest.mark.parametrize("hw, expected", [
    (Hardware(total_ram=32 * GiB, available_ram=24 * GiB), "fits"),
    (Hardware(total_ram=8 * GiB, available_ram=3 * GiB), "tight"),          # close other apps
    (Hardware(total_ram=4 * GiB, available_ram=3 * GiB), "won't fit"),
    (Hardware(total_ram=4 * GiB, available_ram=1 * GiB, gpus=(GPU("RTX", 8 * GiB, 7 * GiB),)), "fits"),
    (Hardware(total_ram=4 * GiB, available_ram=3 * GiB, gpus=(GPU("GTX", 4 * GiB, 3 * GiB),)), "tight"),
    (Hardware(total_ram=2 * GiB, available_ram=1 * GiB, gpus=(GPU("GTX", 2 * GiB, 2 * GiB),)), "won't fit"),
])
def test_fit_labels(hw, expected):
    assert fit(SEVEN_B, hw) == expected


def test_fit_thresholds_are_at_the_documented_fractions():
    need = SEVEN_B.memory_needed()
    just_fits = Hardware(total_ram=10 * need, available_ram=int(need / 0.8) + 1)
    tight_now = Hardware(total_ram=int(need / 0.9) - 10, available_ram=int(need / 0.8) - 10)
    just_not = Hardware(total_ram=int(need / 0.9) - 10, available_ram=need - 10)
    assert fit(SEVEN_B, just_fits) == "fits"
    assert fit(SEVEN_B, tight_now) == "tight"     # it fits in the free RAM, with little headroom
    assert fit(SEVEN_B, just_not) == "won't fit"


def test_labels_agree_with_the_numbers_shown_issue_14_item_8():
    """24 GB RAM, no GPU, 23.0 GiB free: the 32B Q4_K_M needs about 21.7 GiB, so it fits — tightly."""
    entry = get_entry("r1-qwen-32b-q4_k_m")
    hw = Hardware(total_ram=int(23.4 * GiB), available_ram=int(23.0 * GiB))
    assert entry.memory_needed() < hw.available_ram
    assert fit(entry, hw) == "tight"
    assert fit(get_entry("r1-qwen-14b-q4_k_m"), hw) == "fits"
    assert fit(get_entry("r1-qwen-32b-q8_0"), hw) == "won't fit"
    assert "GiB" in hw.describe() and "GB " not in hw.describe()


def test_expected_speed_is_bandwidth_over_model_size():
    hw = Hardware(total_ram=24 * GiB, available_ram=23 * GiB, bandwidth=10e9)
    small, big = get_entry("r1-qwen-1.5b-q4_k_m"), get_entry("r1-qwen-14b-q4_k_m")
    s_small, s_big = hardware.entry_speed(small, hw), hardware.entry_speed(big, hw)
    assert s_small is not None and s_big is not None and s_small.basis == "ram"
    assert s_small.tokens_per_s == pytest.approx(10e9 * hardware.DECODE_EFFICIENCY / small.size_bytes)
    assert s_small.tokens_per_s / s_big.tokens_per_s == pytest.approx(big.size_bytes / small.size_bytes)
    assert hardware.entry_speed(small, Hardware(24 * GiB, 23 * GiB)) is None      # bandwidth unknown
    on_gpu = Hardware(8 * GiB, 4 * GiB, gpus=(GPU("RTX", 24 * GiB, 22 * GiB),), bandwidth=10e9)
    assert hardware.entry_speed(big, on_gpu).basis == "gpu"


def test_recommendation_weighs_speed_on_a_slow_two_core_machine():
    """The issue's machine: 24 GB, no GPU, a 2-core CPU (bench: 9.5 GB/s) — ★ is not the 14B at ~1 tok/s."""
    slow = Hardware(total_ram=int(23.4 * GiB), available_ram=int(23.0 * GiB), bandwidth=9.5e9)
    pick = recommend(list(CATALOG), slow)
    assert pick is not None and pick.id == "r1-qwen-1.5b-q4_k_m"
    assert hardware.entry_speed(pick, slow).usable
    fast = Hardware(total_ram=int(23.4 * GiB), available_ram=int(23.0 * GiB), bandwidth=100e9)
    assert recommend(list(CATALOG), fast).id == "r1-qwen-14b-q4_k_m"
    crawl = Hardware(total_ram=int(23.4 * GiB), available_ram=int(23.0 * GiB), bandwidth=1e9)
    assert recommend(list(CATALOG), crawl).id == "r1-qwen-1.5b-q4_k_m"      # nothing usable: the fastest


def test_bandwidth_is_measured_once_and_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(hardware, "_bandwidth", {})
    monkeypatch.setattr(hardware, "measure_bandwidth", lambda: calls.append(1) or 12e9)
    assert hardware.memory_bandwidth() == 12e9
    assert hardware.memory_bandwidth() == 12e9
    monkeypatch.setattr(hardware, "_bandwidth", {})          # a new process reads the cache file
    assert hardware.memory_bandwidth() == 12e9
    assert calls == [1]


def test_measure_bandwidth_is_a_plausible_number():
    assert 1e8 < hardware.measure_bandwidth(size_mb=16, repeats=1) < 1e13


def test_longer_context_can_change_the_label():
    entry = get_entry("r1-qwen-14b-q4_k_m")
    hw = Hardware(total_ram=16 * GiB, available_ram=int(entry.memory_needed() / 0.8) + 1)
    assert fit(entry, hw) == "fits"
    assert fit(entry, hw, n_ctx=131072) != "fits"


def test_recommend_picks_the_largest_model_that_fits_at_q4():
    assert recommend(list(CATALOG), Hardware(total_ram=64 * GiB, available_ram=48 * GiB)).id == "r1-qwen-32b-q4_k_m"
    assert recommend(list(CATALOG), Hardware(total_ram=16 * GiB, available_ram=11 * GiB)).id == "r1-0528-qwen3-8b-q4_k_m"
    small = recommend(list(CATALOG), Hardware(total_ram=3 * GiB, available_ram=1 * GiB))
    assert small is not None and small.id == "r1-qwen-1.5b-q4_k_m" and fit(small, Hardware(3 * GiB, 1 * GiB)) == "tight"
    assert recommend(list(CATALOG), Hardware(total_ram=1 * GiB, available_ram=GiB // 2)) is None


def test_parse_nvidia_smi():
    out = "NVIDIA GeForce RTX 4090, 24564, 23000\nNVIDIA H100 80GB HBM3, 81559, 80000\n\ngarbage\n"
    gpus = parse_nvidia_smi(out)
    assert gpus == (GPU("NVIDIA GeForce RTX 4090", 24564 * 2**20, 23000 * 2**20),
                    GPU("NVIDIA H100 80GB HBM3", 81559 * 2**20, 80000 * 2**20))
    assert parse_nvidia_smi("[N/A], x, y") == ()


def test_detect_reads_this_machine():
    hw = hardware.detect()
    assert hw.bandwidth is None                  # measured only where speeds are shown (catalog)
    assert hw.total_ram > 0 and 0 < hw.available_ram <= hw.total_ram
    assert "RAM" in hw.describe()


def test_detect_without_nvidia_smi_has_no_gpu(monkeypatch):
    monkeypatch.setattr(hardware.shutil, "which", lambda name: None)
    assert hardware.detect_gpus(max_age=0) == ()


def test_failing_nvidia_smi_has_no_gpu(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    fake.chmod(0o755)
    monkeypatch.setattr(hardware.shutil, "which", lambda name: str(fake))
    assert hardware.detect_gpus(max_age=0) == ()


def test_callers_at_the_same_moment_share_one_gpu_probe(monkeypatch, tmp_path):
    """Opening the model manager ran nvidia-smi twice (the catalog and the Safety models tab, on two threads)."""
    import threading

    calls = tmp_path / "calls"
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\necho x >> {calls}\nsleep 0.3\necho 'NVIDIA H100, 81559, 80000'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(hardware.shutil, "which", lambda name: str(fake))
    monkeypatch.setattr(hardware, "_gpu_probe", None)
    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(hardware.detect().gpus)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls.read_text().splitlines()) == 1                      # one probe for both
    assert found[0] == found[1] and found[0][0].name == "NVIDIA H100"
    hardware.detect_gpus(max_age=0)                                       # a load decision can ask afresh
    assert len(calls.read_text().splitlines()) == 2


def test_catalog_module_constants():
    assert catalog.DEFAULT_CONTEXT == 4096
