"""One self-check, end to end: load the suite and the model, run it, log it, write the report.

The CLI (``r1desk selfcheck``) and the GUI (Tools → Safety self-check, on a worker thread with a
progress bar and a Cancel button) both call ``run_model_selfcheck``. Each prompt runs as its own
conversation in the audit log, titled "[self-check <run>] …", and the run itself is recorded in the
audit log's self-check table (status running → done/cancelled) so runs can be charted over time.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from r1desk.core.backend import InferenceBackend
from r1desk.core.config import ChatConfig, monitor_mode
from r1desk.core.guard.policy import Policy
from r1desk.core.selfcheck.runner import (AnswerJudge, Progress, SelfCheckRun, modes_for,
                                          run_selfcheck)
from r1desk.core.selfcheck.suites import Prompt, load_suite
from r1desk.errors import UserFacingError
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.conversations import SELFCHECK_TITLE_PREFIX

log = logging.getLogger("r1desk.selfcheck")


@dataclass
class SelfCheckOptions:
    model: str | Path | None = None        # None: use the engine passed in (the GUI's loaded model)
    suite: str = "builtin"                 # "builtin" or a CSV path
    fmt: str = "auto"                      # auto | sst | xstest
    guards: str = "both"                   # on | off | both
    limit: int | None = None
    seed: int = 0
    max_tokens: int | None = None          # None: the settings' maximum new tokens
    language: str | None = "auto"
    n_ctx: int | None = None
    gpu_layers: str | None = None
    report: Path | None = None


def run_model_selfcheck(opts: SelfCheckOptions, *, config: ChatConfig, audit: AuditLog | None = None,
                        engine: InferenceBackend | None = None,
                        session_factory: Callable[..., Any] | None = None,
                        progress: Callable[[Progress], None] | None = None,
                        cancel: threading.Event | None = None) -> SelfCheckRun:
    """Run the options' suite against a model with the guards on/off/both; return the finished run.

    ``session_factory(engine, audit=, config=, guarded=)`` builds a chat session (default:
    ``core.chat.ChatSession``); tests pass one with deterministic classifiers."""
    modes = modes_for(opts.guards)
    if opts.seed < 0:
        raise UserFacingError(f"--seed must be 0 or more, not {opts.seed}")
    if opts.limit is not None and opts.limit < 1:
        raise UserFacingError(f"--limit must be at least 1, not {opts.limit}")
    if opts.max_tokens is not None and opts.max_tokens < 1:
        raise UserFacingError(f"--max-tokens must be at least 1, not {opts.max_tokens}")
    suite_name, prompts = load_suite(opts.suite, opts.fmt)     # bad suites fail before the model loads
    backend = engine if engine is not None else _load_engine(opts, config)
    try:
        return _run(opts, modes, suite_name, prompts, config, audit, backend, session_factory, progress, cancel)
    finally:
        if engine is None:
            backend.unload()


def _load_engine(opts: SelfCheckOptions, config: ChatConfig) -> InferenceBackend:
    from r1desk.core.backend import open_backend

    if not opts.model:
        raise UserFacingError("no model given", hint="pass --model PATH to a GGUF file")
    return open_backend(config.generation.backend_config(str(opts.model), n_ctx=opts.n_ctx, gpu_layers=opts.gpu_layers,
                                                         seed=opts.seed))


def _run(opts: SelfCheckOptions, modes: list[str], suite_name: str, prompts: list[Prompt], config: ChatConfig,
         audit: AuditLog | None, engine: InferenceBackend, session_factory: Callable[..., Any] | None,
         progress: Callable[[Progress], None] | None, cancel: threading.Event | None) -> SelfCheckRun:
    from r1desk.core.gguf_info import file_sha256

    if not engine.loaded:
        raise UserFacingError("no model is loaded", hint="load a GGUF model first")
    if session_factory is None:
        from r1desk.core.chat import ChatSession

        session_factory = ChatSession
    model = engine.describe().to_dict()
    if model["backend"] == "llama.cpp" and not model.get("sha256"):   # the report names the exact file
        model["sha256"] = model["digest"] = file_sha256(model["model_id"])
    per_mode = {"on": config, "off": config.with_guard(monitor_mode(config.guard))}
    policy = {**Policy.from_config(config.guard).to_dict(), "preamble": config.preamble,
              "guards_off": "monitor mode: every block/redact action lowered to flag"}
    # Logged before anything that can fail, so a run that cannot start is still on record as failed.
    run_id = _log_run(audit, None, suite=suite_name, model=model, guards=opts.guards, status="running")
    try:
        sessions = {mode: session_factory(engine, audit=audit, config=per_mode[mode], guarded=True)
                    for mode in modes}
    except BaseException:
        _log_run(audit, run_id, suite=suite_name, model=model, guards=opts.guards, status="failed")
        raise
    base_params = next(iter(sessions.values())).generation_params(max_tokens=opts.max_tokens, seed=opts.seed)

    def make_request(prompt: Prompt, mode: str) -> Any:
        from r1desk.core.chat import TurnRequest

        conversation_id = None
        if audit is not None:
            conversation_id = audit.create_conversation(
                f"{SELFCHECK_TITLE_PREFIX}{run_id[:8]}] {prompt.id} · guards {mode}")
        return TurnRequest(user_text=prompt.text, conversation_id=conversation_id, language=opts.language,
                           params=base_params)

    try:
        run = run_selfcheck(prompts, sessions.__getitem__, make_request_for=make_request, suite=suite_name,
                            judge=_guard_judge(next(iter(sessions.values()))),
                            guards=opts.guards, seed=opts.seed, limit=opts.limit, model=model, policy=policy,
                            settings={"generation": asdict(base_params), "language": opts.language,
                                      "template": config.template},
                            min_share=config.guard.min_share, progress=progress, cancel=cancel, run_id=run_id)
    except BaseException:
        _log_run(audit, run_id, suite=suite_name, model=model, guards=opts.guards, status="failed")
        raise
    finally:
        for session in sessions.values():
            close = getattr(session, "close", None)
            if close:
                close()
    report_path = None
    if opts.report is not None:
        from r1desk.core.selfcheck.report import write_report

        # logged first so the report's history chart includes this run; the path once the file exists
        _log_run(audit, run_id, suite=suite_name, model=model, guards=opts.guards, metrics=run.metrics,
                 status="cancelled" if run.cancelled else "done")
        history = audit.list_selfcheck_runs(limit=50) if audit is not None else []
        report_path = write_report(run.to_dict(), opts.report, history=history)
    _log_run(audit, run_id, suite=suite_name, model=model, guards=opts.guards, metrics=run.metrics,
             status="cancelled" if run.cancelled else "done", report=report_path)
    return run


def _log_run(audit: AuditLog | None, run_id: str | None, *, suite: str, model: dict[str, Any], guards: str, status: str,
             metrics: dict[str, Any] | None = None, report: Path | None = None) -> str:
    """Record the run in the audit log's self-check table; without an audit log, just make an id."""
    if audit is None:
        import uuid

        return run_id or uuid.uuid4().hex
    return audit.log_selfcheck_run(suite=suite, model_name=model.get("name"), model_sha256=model.get("sha256"),
                                   guards_mode=guards, metrics=metrics, report_path=report, run_id=run_id,
                                   status=status)


def _guard_judge(session: Any) -> AnswerJudge | None:
    """The chat's guard model as the self-check's judge, when one is installed and active."""
    from r1desk.core.guard.classifier import State
    from r1desk.core.guard.harm.classifier import HarmClassifier
    from r1desk.core.selfcheck.guard_judge import GuardJudge

    guard = getattr(session, "guard", None)
    harm = guard.classifier("harm") if guard is not None else None
    if not isinstance(harm, HarmClassifier) or harm.judge_model is None:
        return None
    try:
        harm.load()
    except UserFacingError:
        return None
    return GuardJudge(harm) if harm.status().state is State.ACTIVE else None
