"""Hold-back: nothing a block or redact rule could stop reaches the screen before it is judged.

For each channel where the policy can block or redact (and some classifier is judging), generated text
is kept back until the guard has judged it (``GuardPipeline.judged_upto``), then released as ``Delta``
events; the view shows a quiet "checking…" meanwhile (``Checking``). Guard events (redactions, blocks)
are always handed out before the text they concern, so a redacted span is never shown raw and text
after a block is never shown at all. Channels with only flag rules stream at once, as before.

The display latency of every released character (decoded -> released) is recorded, for the turn's
timings and for ``bench/bench_harm.py``.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from r1desk.core.events import Checking, Delta

Channel = Literal["thinking", "answer"]
_CHANNELS: tuple[Channel, ...] = ("thinking", "answer")


class HoldBack:
    def __init__(self, held: set[Channel], judged_upto: Callable[[str], int], cut: Callable[[str], int],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        """``held``: channels to hold; ``judged_upto(ch)``: how far ``ch`` is judged; ``cut(ch)``: where a
        block ends what may ever be shown of ``ch`` (its length when there is none)."""
        self.held = held
        self.judged_upto = judged_upto
        self.cut = cut
        self.clock = clock
        self.raw: dict[str, str] = {"thinking": "", "answer": ""}
        self.released: dict[str, int] = {"thinking": 0, "answer": 0}
        self._arrivals: dict[str, deque[tuple[int, float]]] = {"thinking": deque(), "answer": deque()}  # (end, time)
        self.latencies: list[tuple[int, float]] = []   # (characters, seconds from generated to released)
        self._checking: dict[str, int] = {"thinking": 0, "answer": 0}

    def add(self, channel: Channel, text: str) -> list[Delta | Checking]:
        """New generated text; returns what may be shown now."""
        self.raw[channel] += text
        self._arrivals[channel].append((len(self.raw[channel]), self.clock()))
        if channel not in self.held:
            return self._release(channel, len(self.raw[channel]))
        return self._checking_event(channel)

    def already_shown(self, channel: Channel, text: str) -> None:
        """Text the view shows already (a continuation's earlier reply): counted, never handed out again."""
        self.raw[channel] += text
        self.released[channel] = len(self.raw[channel])

    def poll(self, upto: dict[str, int] | None = None) -> list[Delta | Checking]:
        """Release what has been judged since the last call. Read ``judged_upto`` *before* handing out
        the guard's events and pass it as ``upto``, so a block decided in between is already known."""
        out: list[Delta | Checking] = []
        for channel in self.held:
            limit = (upto or {}).get(channel, self.judged_upto(channel))
            out += self._release(channel, limit)
            out += self._checking_event(channel)
        return out

    def flush(self) -> list[Delta | Checking]:
        """The turn is over and everything was judged: release the rest (never past a block)."""
        out: list[Delta | Checking] = []
        for channel in _CHANNELS:
            out += self._release(channel, len(self.raw[channel]))
            out += self._checking_event(channel)
        return out

    def _release(self, channel: Channel, limit: int) -> list[Delta | Checking]:
        end = min(limit, len(self.raw[channel]), self.cut(channel))
        start = self.released[channel]
        if end <= start:
            return []
        self.released[channel] = end
        now = self.clock()
        arrivals = self._arrivals[channel]
        previous = start
        while arrivals and arrivals[0][0] <= end:
            offset, at = arrivals.popleft()
            if offset > previous:
                self.latencies.append((offset - previous, now - at))
            previous = offset
        if arrivals and end > previous:               # part of a piece released (a sentence ended inside it)
            self.latencies.append((end - previous, now - arrivals[0][1]))
        return [Delta(channel, self.raw[channel][start:end])]

    def _checking_event(self, channel: Channel) -> list[Delta | Checking]:
        if channel not in self.held:
            return []
        waiting = len(self.raw[channel]) - self.released[channel]
        if waiting == self._checking[channel]:
            return []
        if (waiting > 0) == (self._checking[channel] > 0) and waiting > 0:
            self._checking[channel] = waiting
            return []                                 # still checking: one event when it starts and ends
        self._checking[channel] = waiting
        return [Checking(channel, max(0, waiting))]

    def percentiles(self) -> dict[str, float | None]:
        """Display latency p50/p95 in seconds, weighted by characters (None when nothing was held)."""
        if not self.latencies or not self.held:
            return {"holdback_p50_s": None, "holdback_p95_s": None}
        ordered = sorted(self.latencies, key=lambda x: x[1])
        total = sum(n for n, _ in ordered)
        out: dict[str, float | None] = {}
        for name, q in (("holdback_p50_s", 0.5), ("holdback_p95_s", 0.95)):
            seen = 0
            for n, latency in ordered:
                seen += n
                if seen >= q * total:
                    out[name] = round(latency, 4)
                    break
        return out
