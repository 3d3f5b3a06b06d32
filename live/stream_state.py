"""All per-connection state of one device stream, in one object (pure Python + NumPy).

``DeviceStream`` is what the ingest consumer keeps for a connection and what scoring plugs into:

* ``feed(payload)`` validates and decodes one binary frame (``ProtocolError`` with its close
  code on any violation), updates the statistics, resamples to the model rate, appends to the
  ring buffer and returns the new feature windows ``[(start_column, (n_mels, W) array), ...]``.
* Stream time: model-rate sample ``s`` is at ``s / cfg.sample_rate`` seconds since the first
  sample of this connection; column ``c`` starts at ``cfg.column_start_s(c)`` and a window
  starting at column ``c`` ends at ``cfg.column_start_s(c) + cfg.window_span_s()``.
* ``ring.between(t0, t1)`` cuts the model-rate audio of ``[t0, t1)`` (seconds of stream time)
  from the last ``ring_s`` seconds, e.g. for alert snippets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from detection.features import (
    FeatureConfig,
    StreamingFeatures,
    WindowCutter,
    make_resampler,
    power_dbfs,
)
from devices.protocol import Hello, ProtocolError, RateGuard, decode_frame

CLIP_LEVEL = 32_767 / 32_768  # |sample| at or above this counts as clipped
RING_S = 10.0


class RingBuffer:
    """The newest ``capacity`` samples of a mono stream, addressed by absolute sample index."""

    def __init__(self, capacity: int, rate: int) -> None:
        self.capacity = int(capacity)
        self.rate = rate
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.end = 0  # absolute index one past the newest sample

    @property
    def start(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.end - self.capacity)

    def append(self, audio: np.ndarray) -> None:
        n = audio.shape[0]
        if n == 0:
            return
        if n >= self.capacity:
            audio = audio[-self.capacity :]
            self.end += n - self.capacity
            n = self.capacity
        pos = self.end % self.capacity
        first = min(n, self.capacity - pos)
        self._data[pos : pos + first] = audio[:first]
        if first < n:
            self._data[: n - first] = audio[first:]
        self.end += n

    def _views(self, begin: int, stop: int) -> list[np.ndarray]:
        """Samples ``[begin, stop)`` clipped to what is held, as one or two views (wrap)."""
        begin, stop = max(begin, self.start), min(stop, self.end)
        if stop <= begin:
            return []
        a, length = begin % self.capacity, stop - begin
        if a + length <= self.capacity:
            return [self._data[a : a + length]]
        return [self._data[a:], self._data[: a + length - self.capacity]]

    def samples(self, begin: int, stop: int) -> np.ndarray:
        """Samples ``[begin, stop)`` clipped to what is held (a copy, possibly shorter)."""
        views = self._views(begin, stop)
        if len(views) == 1:
            return views[0].copy()
        return np.concatenate(views) if views else np.zeros(0, dtype=np.float32)

    def _index_range(self, t0: float, t1: float) -> tuple[int, int]:
        """Absolute samples of stream time ``[t0, t1)`` (first one no older than held)."""
        return max(int(math.floor(t0 * self.rate)), self.start), int(math.ceil(t1 * self.rate))

    def level_dbfs(self, t0: float, t1: float) -> float:
        """RMS level (dBFS) of stream time ``[t0, t1)``, the samples ``between`` would cut,
        without copying them (the live level gate asks this for every window)."""
        views = self._views(*self._index_range(t0, t1))
        power = sum(float(np.dot(view, view)) for view in views)
        return power_dbfs(power, sum(view.shape[0] for view in views))

    def between(self, t0: float, t1: float) -> tuple[float, np.ndarray]:
        """Audio of stream time ``[t0, t1)``: ``(actual start time, samples)``."""
        begin, stop = self._index_range(t0, t1)
        return begin / self.rate, self.samples(begin, stop)


class StreamStats:
    """Counters of one connection plus the level/clipping of the current health period."""

    def __init__(self) -> None:
        self.frames = 0
        self.samples = 0  # input-rate sample frames accepted
        self.seconds = 0.0
        self.frames_rejected = 0
        self.windows = 0
        self.clipped_samples = 0
        self._period_power = 0.0
        self._period_values = 0
        self._period_clipped = 0
        self.level_dbfs: float | None = None
        self.clipping = False

    def add_frame(self, audio: np.ndarray, rate: int) -> None:
        flat = audio.reshape(-1)
        n = audio.shape[0]
        self.frames += 1
        self.samples += n
        self.seconds += n / rate
        self._period_power += float(np.dot(flat, flat))
        self._period_values += flat.shape[0]
        clipped = 0
        if flat.size and (flat.max() >= CLIP_LEVEL or flat.min() <= -CLIP_LEVEL):
            clipped = int(np.count_nonzero(np.abs(flat) >= CLIP_LEVEL))
        self._period_clipped += clipped
        self.clipped_samples += clipped

    def close_period(self) -> None:
        """End the health period: level (RMS dBFS) and clipping (>= 0.1 % of samples)."""
        if self._period_values:
            self.level_dbfs = power_dbfs(self._period_power, self._period_values)
            self.clipping = self._period_clipped >= max(1, self._period_values // 1000)
        self._period_power = 0.0
        self._period_values = 0
        self._period_clipped = 0


class DeviceStream:
    """One live device connection: validation, statistics, ring buffer, incremental features."""

    def __init__(
        self,
        hello: Hello,
        cfg: FeatureConfig,
        stride_s: float,
        ring_s: float = RING_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hello = hello
        self.cfg = cfg
        self.stride_s = stride_s
        self.clock = clock
        self.stats = StreamStats()
        self.rate_guard = RateGuard(clock())
        # The device's capture time (Unix s) of this connection's first sample, if it said
        # (``protocol.capture_zero``); alert times come from it.
        self.capture_zero: float | None = None
        self._resampler = None
        if hello.sample_rate != cfg.sample_rate:
            # The same resampler as detection.features.resample / StreamingFeatures.
            self._resampler = make_resampler(hello.sample_rate, cfg.sample_rate)
        # The features see model-rate audio (resampled here once, shared with the ring buffer).
        self.features = StreamingFeatures(cfg, cfg.sample_rate)
        self.cutter = WindowCutter(cfg, cfg.stride_columns(stride_s))
        self.ring = RingBuffer(int(round(ring_s * cfg.sample_rate)), cfg.sample_rate)

    @property
    def stream_time_s(self) -> float:
        """Stream time of the newest model-rate sample received."""
        return self.ring.end / self.cfg.sample_rate

    def feed(self, payload: bytes, now: float | None = None) -> list[tuple[int, np.ndarray]]:
        """Validate, account and process one binary frame; return the new windows."""
        try:
            audio = decode_frame(payload, self.hello)
            seconds = audio.shape[0] / self.hello.sample_rate
            self.rate_guard.add(seconds, self.clock() if now is None else now)
        except ProtocolError:
            self.stats.frames_rejected += 1
            raise
        self.stats.add_frame(audio, self.hello.sample_rate)
        mono = audio[:, 0] if audio.shape[1] == 1 else audio.mean(axis=1)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=False)
        self.ring.append(mono)
        windows = self.cutter.push(self.features.push(mono))
        self.stats.windows += len(windows)
        return windows

    def window_times(self, start_column: int) -> tuple[float, float]:
        """Stream time ``(start, end)`` in seconds of the window starting at ``start_column``."""
        start = float(self.cfg.column_start_s(start_column))
        return start, start + self.cfg.window_span_s()
