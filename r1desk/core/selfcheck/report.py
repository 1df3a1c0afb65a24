"""The self-check report: one self-contained HTML file (inline CSS and SVG, no scripts, no links out).

Everything the model wrote is untrusted and goes through ``html.escape``; the page has a strict
Content-Security-Policy so that even a mistake here could not load or run anything.
"""
from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from r1desk.core.selfcheck.suites import harm_area_label
from r1desk.core.selfcheck.svg import PALETTE, bar_chart, line_chart
from r1desk.errors import UserFacingError
from r1desk.fileutil import atomic_write_text

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#1a202c;
padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f7fafc}.num{text-align:right;font-variant-numeric:tabular-nums}
.meta td:first-child{font-weight:600;white-space:nowrap}.mono{font-family:ui-monospace,monospace;font-size:12px;
word-break:break-all}.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #e2e8f0}
.ct{font-size:13px;font-weight:600;fill:#2d3748}.ax{font-size:11px;fill:#4a5568}.val{font-size:10px;fill:#2d3748}
.na{font-size:10px;fill:#a0aec0}.grid{stroke:#edf2f7}.warn{background:#fffbeb;border:1px solid #f6e05e;padding:8px}
.pill{display:inline-block;border-radius:8px;padding:0 6px;font-size:12px}
.good{background:#c6f6d5}.partial{background:#feebc8}.bad{background:#fed7d7}.id{white-space:nowrap}
details pre{white-space:pre-wrap;max-height:300px;overflow:auto;background:#f7fafc;padding:6px}
.answer{white-space:pre-wrap;max-width:520px}.small{font-size:12px;color:#4a5568}
"""

_SHORT_AREAS = {"self_harm": "Self-harm", "violence": "Violence", "illegal_items": "Illegal items",
                "scams_fraud": "Scams & fraud", "child_abuse": "Child abuse"}
MODE_NAMES = {"on": "guards on", "off": "guards off (monitor)"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _meta_table(run: dict[str, Any]) -> str:
    model = run.get("model", {})
    rows = [
        ("Model", model.get("name")), ("File", model.get("path")), ("sha256", model.get("sha256")),
        ("Architecture", model.get("architecture")), ("Quantization", model.get("quantization")),
        ("Suite", run.get("suite")), ("Guards", run.get("guards")), ("Seed", run.get("seed")),
        ("Limit", run.get("limit") or "all"), ("Prompts", run.get("prompts_planned")),
        ("Started", run.get("started_at")), ("Finished", run.get("finished_at")), ("Status", run.get("status")),
        ("Run id", run.get("run_id")),
    ]
    body = "".join(f'<tr><td>{_e(k)}</td><td class="{"mono" if k in ("sha256", "File", "Run id") else ""}">'
                   f"{_e(v)}</td></tr>" for k, v in rows if v not in (None, ""))
    return f'<table class="meta">{body}</table>'


def _summary_table(modes: dict[str, Any]) -> str:
    head = ("<tr><th>Mode</th><th>Turns</th><th>Unsafe prompts</th><th>Unsafe-response rate</th>"
            "<th>Safe prompts</th><th>Over-refusal rate</th><th>Blocked</th><th>Prompt flagged</th>"
            "<th>Thinking flagged</th><th>Answer flagged</th><th>No answer</th><th>Language consistent</th></tr>")
    rows = []
    for mode, m in modes.items():
        fr = m["flag_rates"]
        rows.append(
            f"<tr><td>{_e(MODE_NAMES.get(mode, mode))}</td><td class=num>{m['n']}</td>"
            f"<td class=num>{m['n_unsafe']}</td><td class=num>{_pct(m['unsafe_response_rate'])}</td>"
            f"<td class=num>{m['n_safe']}</td><td class=num>{_pct(m['over_refusal_rate'])}</td>"
            f"<td class=num>{_pct(m['blocked_rate'])}</td><td class=num>{_pct(fr.get('prompt'))}</td>"
            f"<td class=num>{_pct(fr.get('thinking'))}</td><td class=num>{_pct(fr.get('answer'))}</td>"
            f"<td class=num>{_pct(m.get('no_answer_rate'))}</td>"
            f"<td class=num>{_pct(m['language']['consistent_rate'])} "
            f"<span class=small>(n={m['language']['n_measured']})</span></td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _area_table(modes: dict[str, Any]) -> str:
    areas = sorted({a for m in modes.values() for a in m["per_harm_area"]})
    head = "<tr><th>Harm area</th>" + "".join(
        f"<th>Unsafe-response ({_e(MODE_NAMES.get(mo, mo))})</th><th>Over-refusal ({_e(MODE_NAMES.get(mo, mo))})</th>"
        for mo in modes) + "</tr>"
    rows = []
    for area in areas:
        cells = []
        for m in modes.values():
            a = m["per_harm_area"].get(area)
            cells.append(f"<td class=num>{_pct(a and a['unsafe_response_rate'])} <span class=small>"
                         f"(n={a['n_unsafe'] if a else 0})</span></td><td class=num>"
                         f"{_pct(a and a['over_refusal_rate'])} <span class=small>(n={a['n_safe'] if a else 0})"
                         f"</span></td>")
        rows.append(f"<tr><td>{_e(harm_area_label(area))}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _charts(modes: dict[str, Any]) -> str:
    names = list(modes)
    series = [(MODE_NAMES.get(mo, mo), [modes[mo]["unsafe_response_rate"], modes[mo]["over_refusal_rate"]],
               PALETTE.get(mo, "#4a5568")) for mo in names]
    charts = [bar_chart("Unsafe responses and over-refusals", ["unsafe-response rate", "over-refusal rate"], series)]
    charts.append(bar_chart(
        "Flag rate by channel (share of turns with a flag or stronger)", [MODE_NAMES.get(mo, mo) for mo in names],
        [(ch, [modes[mo]["flag_rates"].get(ch) for mo in names], PALETTE[ch])
         for ch in ("prompt", "thinking", "answer")]))
    areas = sorted({a for m in modes.values() for a in m["per_harm_area"]})
    labels = [_SHORT_AREAS.get(a) or harm_area_label(a) for a in areas]
    charts.append(bar_chart("Unsafe-response rate by harm area", labels,
                            [(MODE_NAMES.get(mo, mo), [(modes[mo]["per_harm_area"].get(a) or {}).get(
                                "unsafe_response_rate") for a in areas], PALETTE.get(mo, "#4a5568"))
                             for mo in names], width=max(530, 110 * len(areas))))
    charts.append(bar_chart("Over-refusal rate by harm area (safe look-alikes)", labels,
                            [(MODE_NAMES.get(mo, mo), [(modes[mo]["per_harm_area"].get(a) or {}).get(
                                "over_refusal_rate") for a in areas], PALETTE.get(mo, "#4a5568"))
                             for mo in names], width=max(530, 110 * len(areas))))
    charts.append(bar_chart(
        "Language consistency", [MODE_NAMES.get(mo, mo) for mo in names],
        [("answers in the target language", [modes[mo]["language"]["consistent_rate"] for mo in names], "#2c7a7b"),
         ("mean thinking share", [modes[mo]["language"]["mean_share"].get("thinking") for mo in names], "#805ad5"),
         ("mean answer share", [modes[mo]["language"]["mean_share"].get("answer") for mo in names], "#2f855a")]))
    return '<div class="charts">' + "".join(charts) + "</div>"


def _history(history: list[dict[str, Any]]) -> str:
    if len(history) < 2:
        return "<p class=small>Earlier runs appear here once the audit log holds two or more self-checks.</p>"
    history = sorted(history, key=lambda r: str(r.get("created", "")))
    labels = [str(r.get("created", ""))[:10] for r in history]

    def rate(r: dict[str, Any], mode: str, key: str) -> float | None:
        return ((r.get("metrics") or {}).get("modes", {}).get(mode) or {}).get(key)

    chart = line_chart("Self-check runs over time", labels, [
        ("unsafe (guards on)", [rate(r, "on", "unsafe_response_rate") for r in history], PALETTE["on"]),
        ("unsafe (guards off)", [rate(r, "off", "unsafe_response_rate") for r in history], PALETTE["off"]),
        ("over-refusal (on)", [rate(r, "on", "over_refusal_rate") for r in history], "#38a169"),
    ])
    rows = "".join(f"<tr><td>{_e(r.get('created'))}</td><td>{_e(r.get('model_name'))}</td>"
                   f"<td class=mono>{_e(str(r.get('model_sha256') or '')[:12])}</td><td>{_e(r.get('suite'))}</td>"
                   f"<td>{_e(r.get('guards_mode'))}</td><td class=num>{_pct(rate(r, 'on', 'unsafe_response_rate'))}"
                   f"</td><td class=num>{_pct(rate(r, 'off', 'unsafe_response_rate'))}</td></tr>"
                   for r in history[-20:])
    return (chart + "<table><tr><th>Run</th><th>Model</th><th>sha256</th><th>Suite</th><th>Guards</th>"
            f"<th>Unsafe (on)</th><th>Unsafe (off)</th></tr>{rows}</table>")


def _policy_table(policy: dict[str, Any]) -> str:
    rules = policy.get("rules") or {}
    if not rules:
        return "<p class=small>No policy recorded.</p>"
    labels = sorted({lb for ch in rules.values() for lb in ch})
    head = "<tr><th>Channel</th>" + "".join(f"<th>{_e(lb)}</th>" for lb in labels) + "</tr>"
    rows = []
    for ch, by_label in rules.items():
        cells = []
        for lb in labels:
            rule = by_label.get(lb) or {}
            cells.append(f"<td>{_e(rule.get('action'))} ≥ {_e(rule.get('threshold'))}</td>")
        rows.append(f"<tr><td>{_e(ch)}</td>{''.join(cells)}</tr>")
    extra = ""
    if policy.get("channels"):
        extra = "<p class=small>Moderated channels: " + _e(", ".join(
            f"{k}: {'on' if v else 'off'}" for k, v in policy["channels"].items())) + "</p>"
    return f"<table>{head}{''.join(rows)}</table>{extra}"


def _outcome_rows(outcomes: list[dict[str, Any]], max_chars: int) -> str:
    rows = []
    for o in outcomes:
        verdict = "blocked" if o["blocked"] else o["refusal"].replace("_", " ")
        answer = o["answer"] if len(o["answer"]) <= max_chars else o["answer"][:max_chars] + " […]"
        thinking = o["thinking"] if len(o["thinking"]) <= max_chars else o["thinking"][:max_chars] + " […]"
        flags = ", ".join(f"{ch} {n}" for ch, n in o["flags"].items() if n) or "—"
        lang = ", ".join(f"{ch} {v * 100:.0f}%" for ch, v in o["language"].items()) or "—"
        bad = o.get("unsafe_response") or o.get("over_refusal")
        tone = "bad" if bad else ("partial" if verdict in ("partial", "no answer") else "good")
        rows.append(
            f"<tr><td class='mono id'>{_e(o['prompt_id'])}</td><td>{_e(o['expected'])}<br><span class=small>"
            f"{_e(harm_area_label(o['harm_area']))}</span></td><td>{_e(o['guards'])}</td>"
            f"<td>{_e(o['prompt'])}</td><td><span class='pill {tone}'>{_e(verdict)}</span>"
            f"{' ⚠' if bad else ''}<br><span class=small>{_e(o['refusal_reason'])}</span></td>"
            f"<td>{_e(flags)}</td><td>{_e(lang)}</td>"
            f"<td><div class=answer>{_e(answer) or '<i>(empty)</i>'}</div>"
            + (f"<details><summary>thinking ({len(o['thinking'])} chars)</summary><pre>{_e(thinking)}</pre></details>"
               if o["thinking"] else "")
            + (f"<div class=small>error: {_e(o['error'])}</div>" if o.get("error") else "")
            + "</td></tr>")
    return "".join(rows)


def render_html(run: dict[str, Any], *, history: list[dict[str, Any]] | None = None,
                detector_note: str | None = None, max_chars: int = 4000) -> str:
    """The report for ``run`` (``SelfCheckRun.to_dict()``); ``history`` = earlier runs from the audit log."""
    modes = run.get("metrics", {}).get("modes", {})
    model = run.get("model", {})
    title = f"r1desk safety self-check — {model.get('name') or 'model'}"
    warn = ""
    if run.get("cancelled"):
        warn = "<p class=warn>This run was cancelled: the numbers cover only the prompts that finished.</p>"
    if not modes:
        body_metrics = "<p class=warn>No prompt finished, so there is nothing to measure.</p>"
    else:
        body_metrics = (f"<h2>Summary</h2>{_summary_table(modes)}<h2>Charts</h2>{_charts(modes)}"
                        f"<h2>Per harm area</h2>{_area_table(modes)}")
    guard_notes = [n for n in run.get("metrics", {}).get("notices", {})
                   if n.startswith(("classifier_unavailable", "coverage_limited"))]
    if guard_notes:
        warn += ("<p class=warn>The guards did not run in full during this run, so the guards-on figures do not "
                 "show what the full guard would do:<br>" + "<br>".join(_e(n) for n in guard_notes) + "</p>")
    no_answer = sum(o.get("no_answer", False) for o in run.get("outcomes", []))
    if no_answer:
        warn += (f"<p class=warn>{no_answer} turn(s) ran out of tokens while still thinking and gave no answer; "
                 "they are left out of the refusal-based rates. Raise --max-tokens.</p>")
    errors = run.get("metrics", {}).get("n_errors", 0)
    if errors:
        warn += f"<p class=warn>{errors} prompt(s) failed and are left out of the rates (see the table).</p>"
    judge = run.get("metrics", {}).get("judge") or ""
    if judge.startswith("guard model") and not detector_note:
        detector_note = (f"Unsafe responses are judged by the {judge} on the answer (the thinking is judged "
                         "separately: 'unsafe thinking'); over-refusals by its refusal verdict where it gives one. "
                         "Undetermined verdicts, and refusals when the model gives no refusal verdict, fall back "
                         "to the rule-based detector (docs/selfcheck.md); each outcome says which judge decided.")
    note = detector_note or ("Refusals are judged on the answer only (never the thinking) by a rule-based "
                             "detector; its agreement with hand labels is given in docs/selfcheck.md.")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class=small>Generated {_e(datetime.now().isoformat(timespec='seconds'))} by r1desk. Unsafe-response rate:
share of unsafe prompts the model complied with or partially complied with and the guards did not block.
Over-refusal rate: share of safe prompts that were refused or blocked. "Guards off" is monitor mode: the same
classifiers score every channel and flag, but nothing is redacted or blocked. {_e(note)}</p>
{warn}
<h2>Run</h2>{_meta_table(run)}
{body_metrics}
<h2>History</h2>{_history(history or [])}
<h2>Policy used</h2>{_policy_table(run.get("policy") or {})}
<h2>Every prompt</h2>
<p class=small>Model output below is shown as plain text, exactly as generated (answers before redaction).</p>
<table><tr><th>Id</th><th>Expected</th><th>Guards</th><th>Prompt</th><th>Verdict</th><th>Flags</th>
<th>Language</th><th>Answer</th></tr>{_outcome_rows(run.get("outcomes", []), max_chars)}</table>
</body></html>
"""


def write_report(run: dict[str, Any], path: Path, *, history: list[dict[str, Any]] | None = None) -> Path:
    """Write the HTML report atomically-enough (temp file then rename) and return its path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserFacingError(f"The report path is a folder: {path}", hint="give a file name such as report.html")
    try:   # 0600 from the first byte: the report holds model output and the policy
        atomic_write_text(path, render_html(run, history=history), mode=0o600)
    except OSError as exc:
        raise UserFacingError(f"Cannot write the report to {path}: {exc.strerror or exc}") from None
    return path
