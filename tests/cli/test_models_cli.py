"""`r1desk models info|list|import`, in-process and as a real subprocess for the bad files."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1desk import paths
from r1desk.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_info_text(smollm2_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", str(smollm2_path)]) == 0
    out = capsys.readouterr().out
    assert "architecture   llama" in out
    assert "quantisation   Q4_1" in out
    assert "context        8,192 tokens" in out
    assert "DeepSeek-R1    no" in out
    assert "sha256" not in out


def test_info_json_with_sha256(tiny_r1_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", str(tiny_r1_path), "--json", "--sha256"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["is_r1"] is True and data["architecture"] == "qwen2"
    assert data["size_bytes"] == tiny_r1_path.stat().st_size
    assert data["sha256"] == hashlib.sha256(tiny_r1_path.read_bytes()).hexdigest()
    assert "<｜Assistant｜>" in data["chat_template"]


def test_info_template_flag_prints_the_template(tiny_r1_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", str(tiny_r1_path), "--template"]) == 0
    out = capsys.readouterr().out
    assert "DeepSeek-R1    yes" in out
    assert "recipe         DeepSeek-R1 distill (Jan 2025): no system prompt, forced <think>" in out
    assert "{{'<｜Assistant｜>'}}" in out


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "directory", "empty", "wrong_magic", "truncated",
                                  "truncated_header", "unsupported_arch", "embedding_arch"])
def test_bad_file_prints_one_line_and_exits_2(bad_model_files: dict[str, Path], case: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "r1desk", "models", "info", str(bad_model_files[case])],
                          capture_output=True, text=True, cwd=REPO, env=os.environ.copy(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r1desk: error: ")
    assert str(bad_model_files[case]) in lines[0]
    assert proc.stdout == ""


def test_list_empty_then_import_then_list(smollm2_path: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    assert "no models in" in capsys.readouterr().out

    source = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    source.write_bytes(smollm2_path.read_bytes())    # a file of our own to hard-link
    assert main(["models", "import", str(source)]) == 0
    out = capsys.readouterr().out
    dest = paths.models_dir() / source.name
    assert out.strip() in (f"linked: {dest}", f"copied: {dest}")
    assert dest.read_bytes() == source.read_bytes()

    assert main(["models", "import", str(source)]) == 0
    assert capsys.readouterr().out.strip() == f"already present: {dest}"

    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["architecture"], m["quantization"]) for m in listed] == [
        (listed[0]["name"], "llama", "Q4_1")]


def test_import_copy_and_unusable_files_in_the_list(tiny_r1_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "import", str(tiny_r1_path), "--copy"]) == 0
    dest = paths.models_dir() / tiny_r1_path.name
    assert capsys.readouterr().out.strip() == f"copied: {dest}"
    assert dest.stat().st_ino != tiny_r1_path.stat().st_ino
    (paths.models_dir() / "broken.gguf").write_bytes(b"not a model")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "broken.gguf  UNUSABLE:" in out and "wrong magic" in out
    assert f"{tiny_r1_path.name}  qwen2  F16" in out and "R1" in out


def test_import_refuses_bad_files_and_name_clashes(bad_model_files: dict[str, Path], tiny_r1_path: Path,
                                                   smollm2_path: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "import", str(bad_model_files["truncated"])]) == 2
    assert "truncated" in capsys.readouterr().err
    assert list(paths.models_dir().iterdir()) == []
    clash = tmp_path / tiny_r1_path.name
    clash.write_bytes(smollm2_path.read_bytes())
    assert main(["models", "import", str(tiny_r1_path), "--copy"]) == 0
    capsys.readouterr()
    assert main(["models", "import", str(clash)]) == 2
    assert "already exists and is a different file" in capsys.readouterr().err
