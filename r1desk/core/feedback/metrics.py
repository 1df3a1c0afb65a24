"""Small, dependency-free evaluation helpers: precision/recall/F1 per label, the confusion matrix and
the Wilson score interval for a proportion (honest for small samples and for 0 or n successes)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval (95% by default) for k successes in n trials; None when n == 0."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int) -> dict[str, Any]:
    """{"k", "n", "rate", "ci95": [low, high]} (rate and interval None when n == 0)."""
    ci = wilson(k, n)
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None,
            "ci95": [round(ci[0], 4), round(ci[1], 4)] if ci else None}


def prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * p * r / (p + r) if p is not None and r is not None and p + r else (0.0 if p is not None and r is not None
                                                                              else None)
    return {"precision": _r(p), "recall": _r(r), "f1": _r(f)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def classification_report(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Per-label P/R/F1 and support, macro F1, accuracy and the confusion matrix (rows: truth)."""
    index = {lb: i for i, lb in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    per: dict[str, Any] = {}
    for lb, i in index.items():
        tp = matrix[i][i]
        fp = sum(matrix[j][i] for j in range(len(labels))) - tp
        fn = sum(matrix[i]) - tp
        per[lb] = {**prf(tp, fp, fn), "support": sum(matrix[i])}
    f1s = [v["f1"] for v in per.values() if v["f1"] is not None and v["support"]]
    correct = sum(matrix[i][i] for i in range(len(labels)))
    total = sum(map(sum, matrix))
    return {"labels": list(labels), "per_label": per, "macro_f1": _r(sum(f1s) / len(f1s)) if f1s else None,
            "accuracy": _r(correct / total) if total else None, "n": total, "confusion": matrix}


def binary(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, Any]:
    tp = sum(1 for t, p in zip(truth, predicted) if t and p)
    fp = sum(1 for t, p in zip(truth, predicted) if p and not t)
    fn = sum(1 for t, p in zip(truth, predicted) if t and not p)
    return {**prf(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn, "n": len(truth)}
