"""The shown model name: the author's general.name, or the file name where llama.cpp's converter made the
name up by re-casing the checkpoint's folder name (issue 14: "Smollm2 135M 8k Lc100K Mix1 Ep2")."""
from __future__ import annotations

from pathlib import Path

import pytest

from r1desk.core.gguf_info import read_model_info
from r1desk.core.model_name import converter_made, display_name, file_title, id_to_title


def test_the_real_smollm2_file_is_shown_by_its_file_name(smollm2_path: Path) -> None:
    info = read_model_info(smollm2_path)
    assert info.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"          # what the file's header really says
    assert info.shown_name == "SmolLM2-135M-Instruct"
    assert info.to_dict()["display_name"] == "SmolLM2-135M-Instruct"


def test_an_authored_name_is_kept(tiny_r1_path: Path) -> None:
    info = read_model_info(tiny_r1_path)
    assert info.shown_name == info.name == "Tiny R1 Distill Qwen test model h64 l2"


def test_id_to_title_matches_llama_cpp() -> None:
    assert id_to_title("smollm2-135M-8k-lc100k-mix1-ep2") == "Smollm2 135M 8k Lc100K Mix1 Ep2"
    assert id_to_title("DeepSeek-R1-Distill-Qwen-7B") == "DeepSeek R1 Distill Qwen 7B"
    assert id_to_title("llama-v3.1-8b") == "Llama v3.1 8b"


@pytest.mark.parametrize("name, fields, made", [
    ("Smollm2 135M 8k Lc100K Mix1 Ep2",
     {"general.basename": "smollm2", "general.size_label": "135M", "general.finetune": "8k-lc100k-mix1-ep2"}, True),
    # the converter kept the author's casing: nothing was made up
    ("DeepSeek R1 Distill Qwen 7B", {"general.basename": "DeepSeek-R1-Distill-Qwen", "general.size_label": "7B"},
     False),
    ("Qwen2.5 7B Instruct", {"general.basename": "qwen2.5", "general.finetune": "instruct",
                             "general.size_label": "7B"}, True),
    ("My Own Model", {"general.basename": "other"}, False),
    ("Smollm2", {}, False),                                         # no name parts: nothing to compare with
])
def test_converter_made(name: str, fields: dict[str, object], made: bool) -> None:
    assert converter_made(name, fields) is made


@pytest.mark.parametrize("file, title", [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
    ("DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", "DeepSeek-R1-Distill-Qwen-7B"),
    ("Llama-Guard-3-1B.IQ3_XXS.gguf", "Llama-Guard-3-1B"),
    ("qwen3-8b-bf16-00001-of-00002.gguf", "qwen3-8b"),
    ("Q4_K_M.gguf", "Q4_K_M"),                                       # never empty
])
def test_file_title(file: str, title: str) -> None:
    assert file_title(Path(file)) == title


def test_display_name_without_general_name_uses_the_file() -> None:
    assert display_name(None, {}, Path("/m/DeepSeek-R1-0528-Qwen3-8B-Q4_K_M.gguf")) == "DeepSeek-R1-0528-Qwen3-8B"


def test_the_audit_record_keeps_both_names(smollm2_engine) -> None:
    record = smollm2_engine.describe().to_dict()
    assert record["name"] == "SmolLM2-135M-Instruct"                      # what the app showed
    assert record["general_name"] == "Smollm2 135M 8k Lc100K Mix1 Ep2"     # what the file says
