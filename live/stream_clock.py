"""When a live stream's audio happened: stream time -> wall-clock time (pure, no Django).

Stream time is seconds since a connection's first sample. Two ways to tie it to the wall clock:

* ``device``: the hello said when a sample was captured (``devices.protocol.capture_zero``), so
  audio re-sent after an outage gets the time it was captured, not the time it arrived. A device
  clock that puts the newest audio more than ``FUTURE_TOLERANCE_S`` in the future or more than
  ``PAST_TOLERANCE_S`` in the past is not believed: the stream falls back to arrival times.
* ``arrival``: the earliest ``arrival - stream time`` seen so far: the newest audio is never
  later than its arrival, and a burst of re-sent audio (arriving faster than real time) moves
  the zero back to when that audio was captured at the latest.

Either way no time is later than now: an alert never starts after it was created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

DEVICE, ARRIVAL = "device", "arrival"
FUTURE_TOLERANCE_S = 5.0
PAST_TOLERANCE_S = 3600.0


class StreamClock:
    def __init__(self, device_zero: float | None = None, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.device_zero = device_zero
        self.zero: float | None = None
        self.source = DEVICE if device_zero is not None else ARRIVAL

    def observe(self, stream_time_s: float) -> None:
        """Audio up to ``stream_time_s`` has arrived now."""
        arrival_zero = self.clock() - stream_time_s
        if self.source == DEVICE:
            if self.zero is None:
                lag = arrival_zero - self.device_zero  # how long ago the newest audio was captured
                if -FUTURE_TOLERANCE_S <= lag <= PAST_TOLERANCE_S:
                    self.zero = self.device_zero
                    return
                self.source = ARRIVAL
            else:
                return
        self.zero = arrival_zero if self.zero is None else min(self.zero, arrival_zero)

    def wall(self, stream_s: float) -> datetime:
        """Wall-clock time of stream time ``stream_s`` (never later than now)."""
        zero = self.zero if self.zero is not None else self.clock()
        return datetime.fromtimestamp(min(zero + stream_s, self.clock()), tz=UTC)
