"""What the guard reads from the settings, as one immutable value the settings layer builds.

The guard (and the threads it runs) never see the mutable ``r1desk.settings.Settings``: a new
configuration is a new ``GuardConfig``, so a worker thread can never observe half an edit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GuardConfig:
    rules: dict[str, dict[str, tuple[float, str]]] = field(default_factory=dict)  # channel -> label -> (t, action)
    channels: dict[str, bool] = field(default_factory=dict)
    model_type: str = "original"          # Detoxify model
    multilingual: bool = True
    device: str = "cpu"
    num_threads: int = 1
    quantize: bool = False               # torch's dynamic int8 (runtime "torch")
    runtime: str = "onnx"                # "onnx" (int8, no torch) | "torch" (Detoxify's own code)
    window_segments: int = 3
    max_segment_chars: int = 400
    language_target: str = "auto"         # "auto" | "off" | a language code
    language_action: str = "flag"         # flag | annotate | regenerate
    min_share: float = 0.9
    extra: dict[str, Any] = field(default_factory=dict)   # per-classifier options, keyed by classifier name

    def snapshot(self) -> dict[str, Any]:
        """What the audit log keeps with each turn (besides the policy itself)."""
        return {"model_type": self.model_type, "window_segments": self.window_segments,
                "max_segment_chars": self.max_segment_chars,
                "language": {"target": self.language_target, "action": self.language_action,
                             "min_share": self.min_share}}
