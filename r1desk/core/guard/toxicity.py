"""Detoxify as a guard classifier: loaded lazily and once, through Detoxify's own code, offline from
classifiers_dir().

``DetoxifyScorer`` is one Detoxify model (batched ``score(texts) -> [{label: probability}]`` with label
names normalised across model types). ``ToxicityClassifier`` is what the guard registers: it routes each
text to the model that covers its language (the multilingual one for fr/es/it/pt/tr/ru when installed)
and says when coverage is limited. Any object with the ``Scorer`` shape (the ONNX scorer, test fakes)
can stand in for a Detoxify model.

Default policy, and why
-----------------------
Detoxify scores *language* (insults, slurs, threats, explicit content), not intent, so the
defaults stay conservative about blocking and lean on flags an auditor can review.

* **prompt** — the user's own words. Blocking a user for quoting abuse they received is hostile,
  so most labels only *flag* (logged, badge shown). Only clear severe toxicity and threats are
  *blocked* before anything is generated. ``redact`` is not offered for the prompt: the model
  either gets the prompt or it does not.
* **thinking** — published assessments of R1 found the thinking trace less safe than its final
  answer, and it routinely restates harmful requests while reasoning towards a refusal. Blocking
  on thinking would kill good refusals, and the trace is collapsed (or hidden) by default, so
  thinking is *flagged* at moderate thresholds (auditors see every hit) and only the worst
  (severe toxicity, threats, sexual content) is *redacted* in case a user expands it.
* **answer** — what the user reads. Ordinary toxicity is flagged; insults, obscenity and
  identity attacks are redacted; severe toxicity, threats and sexual content *block* the turn
  (generation stops, text not yet shown is withheld, a notice replaces the rest).

Admins calibrate the thresholds with ``r1desk classify``.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from r1desk.core.guard import weights
from r1desk.core.guard.classifier import (ClassifierSpec, ClassifierStatus, Cost, Granularity, Item, Judgement,
                                          Rule, State, register)
from r1desk.core.guard.config import GuardConfig
from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")

LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack", "sexual_explicit")
# Names the released checkpoints use → r1desk's names (Detoxify renames some itself; we make sure).
LABEL_ALIASES = {"toxic": "toxicity", "severe_toxic": "severe_toxicity", "identity_hate": "identity_attack",
                 "sexually_explicit": "sexual_explicit"}
ENGLISH = frozenset({"en"})
MULTILINGUAL_LANGUAGES = frozenset({"en", "fr", "es", "it", "pt", "tr", "ru"})
MAX_BATCH = 16
# A batch is padded to its longest text; texts are grouped by length so a short segment is not
# padded to the length of its rolling window (bench/bench_guard.py measures the saving).
MAX_LENGTH_SPREAD = 1.5


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores texts: DetoxifyScorer, and the scripted fakes in tests."""

    name: str
    labels: tuple[str, ...]
    languages: frozenset[str]  # languages it judges well

    def score(self, texts: list[str]) -> list[dict[str, float]]: ...


def normalise(scores: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in scores.items():
        label = LABEL_ALIASES.get(name, name)
        if label in LABELS:
            out[label] = float(value)
    return out


class DetoxifyModel(Protocol):
    """The part of a loaded ``detoxify.Detoxify`` (the package ships no types) DetoxifyScorer calls."""

    def predict(self, texts: list[str]) -> dict[str, list[float] | float]:
        """label -> one score per text (a plain float for a batch of one)."""
        ...


class DetoxifyScorer:
    """One Detoxify model. ``load()`` (or the first ``score``) loads it; failures raise
    ClassifierUnavailableError with a message saying what is missing and how to import it."""

    def __init__(self, model_type: str = "original", *, device: str = "cpu", num_threads: int = 1,
                 root: Path | None = None, quantize: bool = False) -> None:
        self.model_type = model_type
        self.quantize = quantize  # int8 dynamic quantisation of the Linear layers (CPU only)
        self.name = f"detoxify-{model_type}"
        self.device = device
        self.num_threads = num_threads
        self.root = root
        self.languages = MULTILINGUAL_LANGUAGES if model_type == "multilingual" else ENGLISH
        self.labels: tuple[str, ...] = LABELS
        self.notes: list[str] = []
        self._model: DetoxifyModel | None = None
        self._error: ClassifierUnavailableError | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> DetoxifyModel:
        if self._model is not None:
            return self._model
        if self._error is not None:
            raise self._error
        try:
            checkpoint, hf_dir = weights.require(self.model_type, self.root)
            import torch
            import transformers
            from detoxify import Detoxify

            # unannotated in transformers
            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            if self.num_threads > 0:
                torch.set_num_threads(self.num_threads)
            device = self.device
            if device == "cuda" and not torch.cuda.is_available():
                self.notes.append("CUDA is not available; the toxicity classifier runs on the CPU")
                log.warning("CUDA requested for Detoxify but not available; using the CPU")
                device = "cpu"
            try:
                model = Detoxify(self.model_type, checkpoint=str(checkpoint),
                                 huggingface_config_path=str(hf_dir), device=device)
            except (OSError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
                raise ClassifierUnavailableError(
                    f"toxicity classifier '{self.model_type}' failed to load from {checkpoint.parent}: {exc}",
                    hint=f"re-import it with `r1desk classify --import-weights {self.model_type} ...`") from None
            model.model.eval()
            if self.quantize and device == "cpu":
                model.model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]  # torch: untyped
                    model.model, {torch.nn.Linear}, dtype=torch.qint8)
                self.name = f"detoxify-{self.model_type}-int8"
            self.labels = tuple(label for label in (LABEL_ALIASES.get(c, c) for c in model.class_names)
                                if label in LABELS)
            loaded: DetoxifyModel = model
            self._model = loaded
            log.info("Detoxify %s loaded on %s (labels: %s)", self.model_type, device, ", ".join(self.labels))
        except ClassifierUnavailableError as exc:
            self._error = exc
            log.warning("toxicity filter unavailable: %s", exc)
            raise
        return loaded

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        with self._lock:
            model = self._load_locked()
            out: list[dict[str, float]] = [{} for _ in texts]
            for batch in length_batches(texts):
                raw = model.predict([texts[i] for i in batch])
                for j, i in enumerate(batch):  # a batch of one comes back as plain floats (squeeze)
                    out[i] = normalise({k: (v[j] if isinstance(v, list) else v) for k, v in raw.items()})
            return out


def length_batches(texts: list[str], max_batch: int = MAX_BATCH,
                   spread: float | None = None) -> list[list[int]]:
    """Indices of ``texts`` in batches of similar length (at most ``max_batch``, the longest at most
    ``spread`` times the shortest), so padding wastes little classifier time."""
    spread = MAX_LENGTH_SPREAD if spread is None else spread
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches: list[list[int]] = []
    for i in order:
        if (batches and len(batches[-1]) < max_batch
                and len(texts[i]) <= spread * max(1, len(texts[batches[-1][0]]))):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def make_scorers(model_type: str, *, multilingual: bool = True, device: str = "cpu", num_threads: int = 1,
                 root: Path | None = None, quantize: bool = False,
                 runtime: str = "onnx") -> tuple[Scorer, Scorer | None]:
    """The configured scorer, plus the multilingual one for non-English text when it is installed.

    On the CPU the default runtime is ONNX Runtime with int8 weights (``detoxify_onnx``): about 5× faster
    per segment than torch fp32 with no decision changed at the default thresholds (bench/RESULTS.md,
    "Classifier runtimes"), and no torch at run time. ``runtime="torch"`` (or a CUDA device) keeps Detoxify's
    own code, with ``quantize`` for torch's dynamic int8."""
    from r1desk.core.guard import detoxify_onnx

    def one(kind: str) -> Scorer:
        if runtime == "onnx" and device == "cpu":
            return detoxify_onnx.OnnxDetoxifyScorer(kind, num_threads=num_threads, root=root, quantize=True)
        return DetoxifyScorer(kind, device=device, num_threads=num_threads, root=root, quantize=quantize)

    extra = None
    if multilingual and model_type != "multilingual" and (
            "multilingual" in weights.installed_types(root) or detoxify_onnx.onnx_installed("multilingual", root)):
        extra = one("multilingual")
    return one(model_type), extra


def installed(scorer: Scorer) -> bool:
    """Whether a not-yet-loaded Detoxify scorer has what it needs (weights, or their ONNX conversion)."""
    from r1desk.core.guard import detoxify_onnx

    kind = getattr(scorer, "model_type", None)
    if kind is None:
        return True                                 # a scorer of another kind (a test fake) knows itself
    root = getattr(scorer, "root", None)
    return weights.status(kind, root).installed or detoxify_onnx.onnx_installed(kind, root)


def covered(scorers: Iterable[Scorer | None], language: str) -> Scorer | None:
    """The first scorer that judges ``language`` well, or None (coverage limited)."""
    for scorer in scorers:
        if scorer is not None and language in scorer.languages:
            return scorer
    return None


class ToxicityClassifier:
    """The registered "toxicity" classifier: a main Detoxify model plus, for the languages it does not
    cover, the multilingual one when it is installed."""

    name = "toxicity"
    title = "Toxicity filter"
    labels: tuple[str, ...] = LABELS
    granularity = Granularity.WINDOW
    cost = Cost.MODERATE

    def __init__(self, main: Scorer | None, multilingual: Scorer | None = None, *, enabled: bool = True) -> None:
        self.main = main
        self.multilingual = multilingual
        self.enabled = enabled
        self._error: str | None = None if main is not None else "no toxicity classifier is configured"
        self._loaded = False

    @property
    def model(self) -> str | None:
        return getattr(self.main, "name", None)

    @property
    def notes(self) -> list[str]:
        return list(getattr(self.main, "notes", []) or [])

    def load(self) -> None:
        if not self.enabled or self._loaded:
            return
        if self.main is None:
            raise ClassifierUnavailableError(f"toxicity filter unavailable: {self._error}")
        try:
            load = getattr(self.main, "load", None)
            if load is not None:
                load()
        except ClassifierUnavailableError as exc:
            self._error = exc.message
            raise
        extra = getattr(self.multilingual, "load", None)
        if extra is not None:
            try:
                extra()
            except ClassifierUnavailableError as exc:
                self.multilingual = None
                log.warning("multilingual toxicity model unavailable: %s", exc)
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False

    def status(self) -> ClassifierStatus:
        if not self.enabled:
            return ClassifierStatus(self.name, self.title, State.DISABLED, self.model,
                                    "disabled for this session")
        if self._error is not None:
            return ClassifierStatus(self.name, self.title, State.UNAVAILABLE, self.model, self._error)
        main = self.main
        if main is not None and not getattr(main, "loaded", True) and not installed(main):
            ws = weights.status(getattr(main, "model_type", "original"), getattr(main, "root", None))
            return ClassifierStatus(self.name, self.title, State.UNAVAILABLE, self.model, ws.message())
        return ClassifierStatus(self.name, self.title, State.ACTIVE, self.model, notes=tuple(self.notes))

    def route(self, language: str | None) -> tuple[Scorer | None, bool]:
        """(the model that judges ``language``, whether its coverage is limited)."""
        if self.main is None:
            return None, False
        if language is None:
            return self.main, False
        chosen = covered((self.main, self.multilingual), language)
        return (chosen, False) if chosen is not None else (self.main, True)

    def judge(self, items: Sequence[Item]) -> list[Judgement]:
        if not self.enabled:
            return [Judgement({}) for _ in items]
        self.load()
        out: list[Judgement | None] = [None] * len(items)
        groups: dict[int, tuple[Scorer, bool, list[int]]] = {}
        for i, item in enumerate(items):
            scorer, limited = self.route(item.language)
            if scorer is not None:
                groups.setdefault(id(scorer) * 2 + limited, (scorer, limited, []))[2].append(i)
        for scorer, limited, indices in groups.values():
            try:
                scores = scorer.score([items[i].text for i in indices])
            except ClassifierUnavailableError as exc:
                self._error = exc.message
                raise
            for i, sc in zip(indices, scores):
                out[i] = Judgement(sc, model=scorer.name, coverage_limited=limited)
        return [j if j is not None else Judgement({}) for j in out]

    def coverage(self) -> str:
        """Which languages it judges well, for the coverage-limited notice."""
        main = self.main
        return ", ".join(sorted(getattr(main, "languages", ()) or ()))


def _r(threshold: float, action: str) -> Rule:
    return Rule(threshold, action)


DEFAULT_RULES: dict[str, dict[str, Rule]] = {
    "prompt": {
        "toxicity": _r(0.80, "flag"), "severe_toxicity": _r(0.70, "block"), "obscene": _r(0.80, "flag"),
        "threat": _r(0.80, "block"), "insult": _r(0.80, "flag"), "identity_attack": _r(0.70, "flag"),
        "sexual_explicit": _r(0.70, "flag"),
    },
    "thinking": {
        "toxicity": _r(0.70, "flag"), "severe_toxicity": _r(0.60, "redact"), "obscene": _r(0.70, "flag"),
        "threat": _r(0.70, "redact"), "insult": _r(0.70, "flag"), "identity_attack": _r(0.60, "flag"),
        "sexual_explicit": _r(0.60, "redact"),
    },
    "answer": {
        "toxicity": _r(0.50, "flag"), "severe_toxicity": _r(0.50, "block"), "obscene": _r(0.60, "redact"),
        "threat": _r(0.60, "block"), "insult": _r(0.60, "redact"), "identity_attack": _r(0.50, "redact"),
        "sexual_explicit": _r(0.60, "block"),
    },
}


def _from_config(config: GuardConfig) -> ToxicityClassifier:
    main, extra = make_scorers(config.model_type, multilingual=config.multilingual, device=config.device,
                               num_threads=config.num_threads, quantize=config.quantize, runtime=config.runtime)
    return ToxicityClassifier(main, extra)


SPEC = register(ClassifierSpec(
    name="toxicity", title="Toxicity filter", labels=LABELS, granularity=Granularity.WINDOW,
    cost=Cost.MODERATE, factory=_from_config, default_rules=DEFAULT_RULES,
    description="Detoxify: rude language (toxicity, insults, threats, obscenity, identity attacks, "
                "sexual content) per sentence and over a rolling window of sentences."))
