"""The guard's scoring thread: one background thread that judges fed segments in batches.

``feed()`` on the generation thread only queues; the worker drains everything already waiting into one
batch (so it falls at most about one batch behind even when the classifiers are slower than decoding)
and calls ``process(batch)``. On Linux the thread runs at a lower priority (``nice``): on a small machine
the classifiers compete with llama.cpp's decode threads, and decoding should win (bench/bench_guard.py).
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable

from r1desk.core.guard.segmenter import Segment

log = logging.getLogger("r1desk.guard")

WORKER_NICE = 5
_STOP = object()


class ScoringWorker:
    def __init__(self, process: Callable[[list[Segment]], None], *, nice: int,
                 on_error: Callable[[], None]) -> None:
        """``process`` judges one batch; ``on_error`` is told when it raised (a bug: the caller marks its
        classifiers unavailable rather than pretending they judged)."""
        self.process = process
        self.nice = nice
        self.on_error = on_error
        self._queue: queue.Queue[object] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, segments: list[Segment]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="r1desk-guard", daemon=True)
            self._thread.start()
        with self._idle:
            self._pending += len(segments)
        for segment in segments:
            self._queue.put(segment)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued segment has been judged; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)

    def stop(self, join_timeout: float | None = None) -> None:
        """Stop after what is queued (cancel: without waiting; ``join_timeout``: wait that long)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            if join_timeout is not None:
                self._thread.join(join_timeout)

    def _lower_priority(self) -> None:
        """Lower this thread's priority (only it: Linux niceness is per thread)."""
        if self.nice <= 0 or not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        except OSError as exc:  # a sandbox may forbid it; scoring still works at normal priority
            log.debug("could not lower the guard worker's priority: %s", exc)

    def _run(self) -> None:
        self._lower_priority()
        while True:
            batch = [self._queue.get()]
            while True:  # take everything already waiting: one batched classifier call
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            segments = [b for b in batch if isinstance(b, Segment)]
            try:
                if segments:
                    self.process(segments)
            except Exception:  # a bug: keep the guard honest about it rather than dying silently
                log.exception("guard worker failed on %d segments", len(segments))
                self.on_error()
            finally:
                with self._idle:
                    self._pending -= len(segments)
                    self._idle.notify_all()
            if stop:
                return
