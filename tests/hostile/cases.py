"""Every hostile CLI case of issue 11: how to build it and what the fixed r1desk must answer.

Shared by test_cli_hostile.py (asserts) and measure.py (the before/after table).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.hostile import builders as b


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, Path], tuple[list[str | bytes], bytes]]   # (tmp, home) -> (argv, stdin)
    rc: int                    # what the fixed CLI exits with
    expect: str                # a substring of stderr (rc 2) or stdout (rc 0), lower-cased
    note: str = ""


def _info(builder: Callable[[Path], Path], filename: str) -> Callable[[Path, Path], tuple[list, bytes]]:
    return lambda tmp, home: (["models", "info", str(builder(tmp / filename))], b"")


def _info_template(name: str) -> Callable[[Path, Path], tuple[list, bytes]]:
    def build(tmp: Path, home: Path) -> tuple[list, bytes]:
        template = b.big_template() if name == "big_50mb" else b.TEMPLATES[name]
        return ["models", "info", str(b.template_model(tmp / f"tpl-{name}.gguf", template))], b""
    return build


def _models_list_after_import(tmp: Path, home: Path) -> tuple[list, bytes]:
    models = home / "data" / "models"
    models.mkdir(parents=True, exist_ok=True)
    b.huge_u8_array(models / "imported-u8.gguf")
    b.nested_arrays(models / "imported-nested.gguf")
    b.huge_name(models / "imported-name.gguf")
    return ["models", "list"], b""


def _chat(*flags: str, stdin: bytes = b"", prompt: str | bytes = "hi", model: str = "small") -> Callable:
    def build(tmp: Path, home: Path) -> tuple[list, bytes]:
        path = b.small_model(tmp / "small.gguf", shape_70b=(model == "70b"))
        return ["chat", "-m", str(path), "-p", prompt, "--no-guard", "--db", str(tmp / "audit.db"), *flags], stdin
    return build


def _settings(kind: str) -> Callable[[Path, Path], tuple[list, bytes]]:
    def build(tmp: Path, home: Path) -> tuple[list, bytes]:
        config = home / "config"
        config.mkdir(parents=True, exist_ok=True)
        target = config / "settings.json"
        if kind == "fifo":
            os.mkfifo(target)
        elif kind == "loop":
            os.symlink(config / "settings.other", target)
            os.symlink(target, config / "settings.other")
        elif kind == "100mb":
            target.write_text(json.dumps({"template": "x" * 100_000_000}))
        elif kind == "3mb_value":
            target.write_text(json.dumps({"template": "\x1b[31m" + "x" * 3_000_000}))
        return ["chat", "-m", str(tmp / "missing.gguf"), "-p", "hi", "--no-guard", "--db", str(tmp / "a.db")], b""
    return build


CASES: list[Case] = [
    # GGUF headers
    Case("gguf_256mb_u8_array", _info(b.huge_u8_array, "u8.gguf"), 0, "architecture   llama",
         "256 MB array in the header, sparse file"),
    Case("gguf_20m_nested_arrays", _info(b.nested_arrays, "nested.gguf"), 2, "more than 2000000 array items"),
    Case("gguf_10m_tensors", _info(b.many_tensors, "tensors.gguf"), 2, "10000000 tensors"),
    Case("gguf_2gb_name", _info(b.huge_name, "name.gguf"), 0, "name           name", "falls back to the file name"),
    Case("gguf_268m_token_strings", _info(b.huge_string_array, "strs.gguf"), 2, "268435456 items"),
    Case("gguf_duplicate_arch_key", _info(b.duplicate_arch, "dup.gguf"), 2, "appears twice"),
    Case("gguf_control_chars_name", _info(b.control_name, "ctl.gguf"), 0, "\\x1b]0;pwned\\x07"),
    Case("gguf_symlink_loop", lambda tmp, home: (["models", "info", str(b.symlink_loop(tmp))], b""), 2,
         "symbolic link loop"),
    Case("gguf_fifo", lambda tmp, home: (["models", "info", str(b.fifo(tmp))], b""), 2, "fifo"),
    Case("models_list_3_hostile_imports", _models_list_after_import, 0, "imported-nested.gguf  unusable"),
    # chat templates (models info validates them; the model stays usable with the built-in format)
    Case("template_nested_range", _info_template("nested_range"), 0, "not used"),
    Case("template_A_x_3e9", _info_template("huge_repeat"), 0, "not used"),
    Case("template_syntax_error", _info_template("syntax_error"), 0, "syntax error"),
    Case("template_concat_doubling", _info_template("concat_doubling"), 0, "not used"),
    Case("template_format_width", _info_template("format_width"), 0, "not used"),
    Case("template_50mb", _info_template("big_50mb"), 0, "not used"),
    # prompts and flags
    Case("chat_stdin_invalid_utf8", _chat(stdin=b"caf\xe9 \xff\xfe hello", prompt="-"), 2, "not valid utf-8",
         "decoded, then the fake model fails to load"),
    Case("chat_argv_invalid_utf8", _chat(prompt=b"caf\xe9 \xff hello"), 2, "not valid utf-8"),
    Case("chat_temperature_nan", _chat("--temperature", "nan"), 2, "--temperature nan"),
    Case("chat_temperature_-1", _chat("--temperature", "-1"), 2, "--temperature -1"),
    Case("chat_temperature_inf", _chat("--temperature", "inf"), 2, "--temperature infinity"),
    Case("chat_top_p_5", _chat("--top-p", "5"), 2, "--top-p 5"),
    Case("chat_seed_1e20", _chat("--seed", "1e20"), 2, "--seed 100000000000000000000"),
    Case("chat_n_ctx_0", _chat("--n-ctx", "0"), 2, "--n-ctx 0"),
    Case("chat_n_ctx_1048576_70b_shape", _chat("--n-ctx", "1048576", model="70b"), 2, "gib of memory"),
    # settings file
    Case("settings_fifo", _settings("fifo"), 2, "fifo"),
    Case("settings_symlink_loop", _settings("loop"), 2, "symbolic link loop"),
    Case("settings_100mb_file", _settings("100mb"), 2, "the limit is 4,194,304"),
    Case("settings_3mb_value", _settings("3mb_value"), 2, "(cut, 3,000,005 characters)"),
]
