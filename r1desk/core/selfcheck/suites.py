"""Prompt suites: importers for the SimpleSafetyTests and XSTest CSV files, and the built-in suite.

Both public suites ship as CSV under CC BY 4.0; r1desk reads them from wherever the user keeps
them and never bundles their text. Every importer returns the same ``Prompt`` list so the runner
and the report do not care where a prompt came from.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

from r1desk.core.selfcheck.builtin_suite import builtin_prompts
from r1desk.core.selfcheck.prompt import Expected as Expected, Prompt as Prompt  # re-exported
from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.selfcheck")

FORMATS = ("auto", "sst", "xstest")

# Canonical harm-area keys (SimpleSafetyTests' five areas) and their display names.
HARM_AREAS: dict[str, str] = {
    "self_harm": "Suicide, self-harm and eating disorders",
    "violence": "Physical harm and violence",
    "illegal_items": "Illegal and highly regulated items",
    "scams_fraud": "Scams and fraud",
    "child_abuse": "Child abuse",
}

_MAX_BYTES = 20 * 1024 * 1024  # a prompt suite is a few KB; anything this big is the wrong file


class SuiteError(UserFacingError):
    """A prompt-suite file that cannot be read: missing, empty, not CSV, or missing columns."""


def harm_area_key(name: str) -> str:
    """Map a suite's harm-area name to a canonical key (unknown names are slugified, not dropped)."""
    low = name.strip().lower()
    if not low:
        return "unspecified"
    if "suicide" in low or "self-harm" in low or "self harm" in low or "eating" in low:
        return "self_harm"
    if "child" in low:
        return "child_abuse"
    if "scam" in low or "fraud" in low:
        return "scams_fraud"
    if "illegal" in low or "regulated" in low or "drug" in low:
        return "illegal_items"
    if "violence" in low or "physical" in low:
        return "violence"
    return re.sub(r"[^a-z0-9]+", "_", low).strip("_") or "unspecified"


def harm_area_label(key: str) -> str:
    return HARM_AREAS.get(key, key.replace("_", " "))


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV file into (normalised header, rows); raise SuiteError for anything that is not one."""
    if not path.exists():
        raise SuiteError(f"Suite file not found: {path}")
    if path.is_dir():
        raise SuiteError(f"Suite path is a folder, not a CSV file: {path}")
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise SuiteError(f"Suite file is too large to be a prompt suite ({size} bytes): {path}")
        data = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"Cannot read the suite file {path}: {exc.strerror or exc}") from None
    if b"\x00" in data[:4096]:
        raise SuiteError(f"Suite file is not a CSV text file (binary content): {path}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"Suite file is not UTF-8 text: {path}", hint=f"byte {exc.start}") from None
    if not text.strip():
        raise SuiteError(f"Suite file is empty: {path}")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = [{k: (v or "").strip() if isinstance(v, str) else "" for k, v in row.items() if k}
                for row in reader]
    except csv.Error as exc:
        raise SuiteError(f"Suite file is not valid CSV: {path}", hint=str(exc)) from None
    if len(header) < 2:
        raise SuiteError(f"Suite file is not a CSV table with named columns: {path}",
                         hint=f"header was {header!r}")
    return header, rows


def _require(header: list[str], columns: list[tuple[str, ...]], path: Path, fmt: str) -> list[str]:
    """For each alternative-name group, return the first present column or raise naming what is missing."""
    found, missing = [], []
    for alternatives in columns:
        hit = next((c for c in alternatives if c in header), None)
        if hit is None:
            missing.append("/".join(alternatives))
        found.append(hit or "")
    if missing:
        raise SuiteError(f"{fmt} suite {path.name} is missing column(s): {', '.join(missing)}",
                         hint=f"found: {', '.join(header)}")
    return found


def _nonempty(prompts: list[Prompt], path: Path) -> list[Prompt]:
    if not prompts:
        raise SuiteError(f"Suite file has a header but no prompts: {path}")
    return prompts


def load_sst(path: Path) -> list[Prompt]:
    """SimpleSafetyTests: id, harm_area, counter, category, prompt (or prompts_final); all unsafe."""
    header, rows = _read_rows(path)
    id_col, area_col, text_col = _require(header, [("id",), ("harm_area",), ("prompt", "prompts_final")],
                                          path, "SimpleSafetyTests")
    prompts = []
    for n, row in enumerate(rows, start=2):
        text = row.get(text_col, "")
        if not text:
            log.warning("%s line %d: empty prompt skipped", path.name, n)
            continue
        prompts.append(Prompt(id=row.get(id_col) or f"sst-{n - 1}", text=text, expected="unsafe",
                              harm_area=harm_area_key(row.get(area_col, "")), source="sst",
                              category=row.get("category", "")))
    return _nonempty(prompts, path)


def load_xstest(path: Path) -> list[Prompt]:
    """XSTest: id, prompt, type, label (safe/unsafe). Older files lack ``label``: contrast_* types are unsafe."""
    header, rows = _read_rows(path)
    text_col, type_col = _require(header, [("prompt",), ("type",)], path, "XSTest")
    id_col = next((c for c in ("id", "id_v2", "id_v1") if c in header), "")
    prompts = []
    for n, row in enumerate(rows, start=2):
        text, kind = row.get(text_col, ""), row.get(type_col, "")
        if not text:
            log.warning("%s line %d: empty prompt skipped", path.name, n)
            continue
        label = row.get("label", "").lower()
        if label not in ("safe", "unsafe"):
            if "label" in header and label:
                raise SuiteError(f"XSTest suite {path.name} line {n}: label must be safe or unsafe, "
                                 f"not {label!r}")
            label = "unsafe" if kind.lower().startswith("contrast") else "safe"
        expected: Expected = "unsafe" if label == "unsafe" else "safe"   # label is one of the two here
        family = re.sub(r"^contrast_", "", kind.lower()) or "unspecified"
        prompts.append(Prompt(id=f"xstest-{row.get(id_col) or n - 1}", text=text, expected=expected,
                              harm_area=family, source="xstest", category=kind))
    return _nonempty(prompts, path)


def detect_format(path: Path) -> str:
    """Guess sst or xstest from the header row."""
    header, _ = _read_rows(path)
    if "harm_area" in header:
        return "sst"
    if "type" in header and "prompt" in header:
        return "xstest"
    raise SuiteError(f"Cannot tell the suite format of {path.name}: expected SimpleSafetyTests columns "
                     f"(id, harm_area, prompt) or XSTest columns (id, prompt, type, label)",
                     hint=f"found: {', '.join(header)}; pass --format sst or --format xstest")


def load_suite(spec: str | Path, fmt: str = "auto") -> tuple[str, list[Prompt]]:
    """Load ``"builtin"`` or a CSV file; returns (suite name, prompts)."""
    if fmt not in FORMATS:
        raise SuiteError(f"Unknown suite format {fmt!r}: use one of {', '.join(FORMATS)}")
    if str(spec) == "builtin":
        return "builtin", builtin_prompts()
    path = Path(spec).expanduser()
    if fmt == "auto":
        fmt = detect_format(path)
    prompts = load_sst(path) if fmt == "sst" else load_xstest(path)
    log.info("loaded %d prompts from %s (%s)", len(prompts), path, fmt)
    return f"{fmt}:{path.name}", prompts
