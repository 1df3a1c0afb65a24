"""The period report as one self-contained HTML file (no scripts, no external resources), like the
self-check's. Every value from the log is escaped."""
from __future__ import annotations

import html
import json
from typing import Any

from r1desk.vocabulary import CHANNELS

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#666}code{font-size:.9em}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _rate(r: dict[str, Any]) -> str:
    if r.get("rate") is None:
        return "<span class=muted>no reviews</span>"
    lo, hi = r["ci95"]
    extra = f" (≈ {r['estimated_missed_turns']} turns)" if "estimated_missed_turns" in r else ""
    return f"{r['rate']:.1%} [{lo:.1%}–{hi:.1%}] ({r['k']}/{r['n']}){_e(extra)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any]) -> str:
    p, d, s = report["period"], report["draw"], report["summary"]
    integrity = report["integrity"]
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>Review period {_e(p['id'])}</title>",
             f"<style>{CSS}</style><h1>Review period {_e(p['id'])} ({_e(p['cadence'])})</h1>",
             f"<p>{_e(p['period_start'])} to {_e(p['period_end'])} (UTC). Queue drawn {_e(p['created'])} by "
             f"{_e(p['drawn_by'])}.</p>",
             "<h2>What was reviewed</h2>",
             _table(["", "in the queue", "reviewed"],
                    [["flagged turns", str(s["flagged"]), str(s["reviewed"]["flagged"])],
                     [f"random sample of {s['population_unflagged']} unflagged turns", str(s["sampled"]),
                      str(s["reviewed"]["sampled"])]]),
             f"<p>Outstanding: <b class={'bad' if s['outstanding'] else 'ok'}>{s['outstanding']}</b></p>",
             "<h2>Labels</h2>",
             _table(["label", "turns"], [[_e(k), str(v)] for k, v in sorted(s["labels"].items())]) if s["labels"]
             else "<p class=muted>no reviews yet</p>",
             "<h2>Estimated rates (95% Wilson interval)</h2>",
             _table(["channel", "miss rate (unflagged sample)", "false-flag rate (flagged)"],
                    [[_e(ch), _rate(s["miss_rate"][ch]), _rate(s["false_flag_rate"][ch])]
                     for ch in (*CHANNELS, "any")]),
             "<p class=muted>Miss rate: sampled unflagged turns reviewed as a problem in that channel, over the "
             "sampled turns reviewed. False-flag rate: turns flagged on that channel reviewed as ok.</p>",
             "<h2>Classifier versions in force</h2>",
             _table(["classifier", "model", "decisions"],
                    [[_e(r["classifier"] or "?"), _e(r["model"] or "?"), str(r["decisions"])]
                     for r in report["classifiers_in_force"]]) if report["classifiers_in_force"]
             else "<p class=muted>no guard decisions in the period</p>",
             "<h2>Classifier and policy changes in the period</h2>",
             _table(["when", "who", "what", "details"],
                    [[_e(e["created"]), _e(e["actor"]), _e(e["action"]),
                      f"<code>{_e(json.dumps(e.get('details'), ensure_ascii=False))}</code>"]
                     for e in report["classifier_changes"] + report["policy_changes"]])
             if report["classifier_changes"] or report["policy_changes"] else "<p class=muted>none</p>",
             "<h2>Integrity of the audit log</h2>",
             f"<p class={'ok' if integrity['ok'] else 'bad'}>{_e(integrity['summary'])}</p>",
             "<h2>The sample draw</h2>",
             f"<p>Seed <code>{_e(d['seed'])}</code>; {_e(d['method'])}.</p>",
             f"<p class=muted>Sampled: {_e(', '.join(d['sample_ids']) or 'none')}</p>",
             "<h2>Sign-offs</h2>",
             _table(["when", "auditor", "report sha256", "note"],
                    [[_e(x["created"]), _e(x["auditor"]), f"<code>{_e(x['report_sha256'])}</code>", _e(x["note"])]
                     for x in report["signoffs"]]) if report["signoffs"] else "<p class=muted>not signed off yet</p>",
             "</html>\n"]
    return "\n".join(parts)
