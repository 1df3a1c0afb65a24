"""The name the app shows for a GGUF model.

llama.cpp's converter fills ``general.name`` from the checkpoint's folder name, title-casing each lower-case
word: ``smollm2-135M-8k-lc100k-mix1-ep2`` becomes "Smollm2 135M 8k Lc100K Mix1 Ep2", which is neither the
author's spelling nor what the user downloaded ("SmolLM2-135M-Instruct.Q4_1.gguf"). A name the converter
made up that way is recognised from the file's own ``general.basename`` / ``size_label`` / ``finetune`` /
``version`` and replaced by the file name without its quantisation suffix; an authored name (any name the
converter did not re-case, such as "DeepSeek R1 Distill Qwen 7B") is kept.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import permutations
from pathlib import Path

# llama.cpp gguf-py, metadata.id_to_title: version numbers and words starting with a digit stay as they are
_KEEP_WORD = re.compile(r"^(v\d+(?:\.\d+)*|\d.*)$")
# "-Q4_K_M", ".Q4_1", "-IQ3_XXS", "-f16", "-BF16", "-q8_0" at the end of a file stem
_QUANT_SUFFIX = re.compile(r"[-._](?:I?Q\d+(?:_[A-Z0-9]+)*|[BF]F?16|F32|MXFP4)$", re.IGNORECASE)
_NAME_PARTS = ("general.basename", "general.size_label", "general.finetune", "general.version")


def id_to_title(text: str) -> str:
    """What llama.cpp's converter makes of a model id (gguf-py ``Metadata.id_to_title``)."""
    return " ".join(word.title() if word.islower() and not _KEEP_WORD.match(word) else word
                    for word in text.strip().replace("-", " ").split())


def converter_made(name: str, fields: Mapping[str, object]) -> bool:
    """True when ``name`` is the converter's re-casing of the id its own name parts spell."""
    parts = [str(fields[key]) for key in _NAME_PARTS if isinstance(fields.get(key), str) and fields[key]]
    if not parts or len(parts) > 4:
        return False
    for order in permutations(parts):
        source = " ".join("-".join(order).replace("-", " ").split())
        if id_to_title(source) == name and source != name:
            return True
    return False


def file_title(path: Path) -> str:
    """The file name without ``.gguf`` and its quantisation suffix: "SmolLM2-135M-Instruct"."""
    stem = path.name[:-5] if path.name.lower().endswith(".gguf") else path.name
    stem = re.sub(r"-\d{5}-of-\d{5}$", "", stem)        # split files: -00001-of-00003
    return _QUANT_SUFFIX.sub("", stem) or stem


def display_name(name: str | None, fields: Mapping[str, object], path: Path) -> str:
    """``general.name`` unless the converter made it up, then the file name (never empty)."""
    if name and not converter_made(name, fields):
        return name
    return file_title(path) or name or "model"
