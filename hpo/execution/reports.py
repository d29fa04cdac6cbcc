"""Coalesced reports: a FIFO trial's epochs reach Ray Tune in batches, not one by one.

Each `tune.report` is a round trip through Tune's controller loop (the trial's thread
blocks until the driver has processed the result): about 1.4 ms of a trial slot here
(`benchmarks/trial_overhead.py`: raw Tune with 100 reports against 1), which for a trial
of fast epochs is a real share of what it costs beyond the training itself. Under the
`fifo` scheduler no one decides anything at an epoch (no rung, no perturbation), so a
trial may hand Tune several epochs at once without changing any outcome: `ReportBuffer`
sends the newest epoch as the result Tune sees and the epochs before it under
`EARLIER_KEY`; the driver's recorder and searcher unpack them in order, so every epoch
is stored and learned from exactly as if it had come alone (`unpack`).

A batch is sent when `interval` seconds have passed since the last one (the live view
and a cancellation lag by at most that much, or by one epoch when epochs are longer),
when the epoch saved a checkpoint (the report that names a checkpoint must follow it at
once: the database records it with that epoch, and Ray may need its bytes), and when
the trial function ends, also by an exception (`flush` in the trainable's exception
handler). The batch sent once the function has returned says ``done``, so Tune ends the
trial at that result instead of asking the finished function for one more.

What a kill -9 takes is the unsent batch, at most `interval` seconds of epochs, which
the resumed trial runs again, as it does the epoch in progress.

When batching, a report without an ``epoch`` is numbered by its position, as Tune's
``training_iteration`` would have numbered it alone: one batch is one iteration to Tune.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# The key of a result that carries the epochs reported before it, oldest first.
EARLIER_KEY = "hpo_earlier"
# Seconds between two batches of a FIFO trial: short enough for a live view.
REPORT_INTERVAL_S = 0.5

Send = Callable[[dict[str, Any], bytes | None], None]


class ReportBuffer:
    """Collects a trial's reports and sends them to Tune in batches (module doc).

    `send(result, checkpoint_bytes)` performs one `tune.report`. With ``interval = 0``
    every report is sent at once (the schedulers that decide at each epoch).
    """

    def __init__(
        self, send: Send, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._pending: list[dict[str, Any]] = []
        self._count = 0
        self._last = clock()

    def add(self, result: Mapping[str, Any], data: bytes | None = None, *, now: bool) -> None:
        """Queue `result`; send the batch when `now` (a checkpoint was saved), when `data`
        (Ray's checkpoint bytes) came with it, or when the interval has passed."""
        self._count += 1
        entry = dict(result)
        if self._interval > 0:
            entry.setdefault("epoch", self._count)
        self._pending.append(entry)
        if now or data is not None or self._clock() - self._last >= self._interval:
            self.flush(data)

    def flush(self, data: bytes | None = None, *, last: bool = False) -> None:
        """Send what is queued, if anything, as one result; `last`: the trial function
        has returned, so the result says ``done`` (see the module doc)."""
        if not self._pending:
            return
        *earlier, newest = self._pending
        self._pending = []
        if earlier:
            newest[EARLIER_KEY] = earlier
        if last:
            newest["done"] = True
        self._send(newest, data)
        self._last = self._clock()


def unpack(result: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The epochs one Tune result stands for, oldest first: those under `EARLIER_KEY`,
    then the result itself (which keeps Ray's own keys)."""
    earlier = result.get(EARLIER_KEY)
    if isinstance(earlier, list):
        yield from earlier
    yield result


def epoch_of(result: Mapping[str, Any]) -> int:
    """The epoch a result (or one epoch of a batch) reports; Tune's iteration when it
    names none (a user function may leave ``epoch`` out)."""
    return int(result.get("epoch", result.get("training_iteration", 0)))
