"""Audio the client has captured but the server has not yet acknowledged as stored."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Frame:
    start: int  # index of the first sample frame in the stream
    samples: int
    data: bytes
    captured_at: float = 0.0  # Unix time of its first sample's capture

    @property
    def end(self) -> int:
        return self.start + self.samples


class Backlog:
    """Frames in stream order, bounded to ``max_samples`` (oldest dropped, and counted)."""

    def __init__(self, max_samples: int, bytes_per_sample: int) -> None:
        self.max_samples = max_samples
        self.bytes_per_sample = bytes_per_sample
        self.frames: deque[Frame] = deque()
        self.held = 0
        self.end = 0  # stream index after the newest frame captured
        self.dropped = 0

    @property
    def start(self) -> int:
        return self.frames[0].start if self.frames else self.end

    def add(self, data: bytes, captured_at: float = 0.0) -> None:
        samples = len(data) // self.bytes_per_sample
        self.frames.append(Frame(self.end, samples, data, captured_at))
        self.end += samples
        self.held += samples
        while self.held > self.max_samples and len(self.frames) > 1:
            old = self.frames.popleft()
            self.held -= old.samples
            self.dropped += old.samples

    def ack(self, samples: int) -> None:
        """The server stored everything before ``samples``: forget it."""
        while self.frames and self.frames[0].end <= samples:
            self.held -= self.frames.popleft().samples

    def frames_from(self, sample: int) -> list[Frame]:
        """Frames (the first possibly cut) holding the audio from ``sample`` on."""
        out = []
        for frame in self.frames:
            if frame.end <= sample:
                continue
            if frame.start < sample:
                skip = sample - frame.start
                frame = Frame(
                    sample,
                    frame.samples - skip,
                    frame.data[skip * self.bytes_per_sample :],
                    frame.captured_at,
                )
            out.append(frame)
        return out
