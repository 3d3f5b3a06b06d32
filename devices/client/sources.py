"""Where the client's audio comes from: a file paced in real time, or a microphone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import soundfile

from ..protocol import MAX_SAMPLE_RATE, SAMPLE_RATES


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2")


def load_file(path: str) -> tuple[np.ndarray, int]:
    """A file as int16 ``(n, channels)`` at a rate the protocol accepts (1 or 2 channels)."""
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if audio.shape[1] > 2:
        audio = audio.mean(axis=1, keepdims=True)
    if rate not in SAMPLE_RATES:  # the next accepted rate up (48 kHz at most)
        target = min((r for r in SAMPLE_RATES if r >= rate), default=MAX_SAMPLE_RATE)
        n_out = int(round(audio.shape[0] * target / rate))
        t_in = np.arange(audio.shape[0]) / rate
        t_out = np.arange(n_out) / target
        audio = np.stack([np.interp(t_out, t_in, ch) for ch in audio.T], axis=1)
        rate = target
    return to_pcm16(audio), int(rate)


class FileSource:
    """Frames of a file, released at ``speed`` times real time (optionally looped)."""

    def __init__(self, path: str, frame_s: float = 0.2, loop: bool = False, speed: float = 1.0):
        self.audio, self.rate = load_file(path)
        self.channels = self.audio.shape[1]
        self.frame = max(1, int(round(frame_s * self.rate)))
        self.loop = loop
        self.speed = speed

    async def frames(self) -> AsyncIterator[bytes]:
        t0 = time.monotonic()
        released = 0
        while True:
            for i in range(0, self.audio.shape[0], self.frame):
                chunk = self.audio[i : i + self.frame]
                released += chunk.shape[0]
                due = t0 + released / self.rate / self.speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                yield chunk.tobytes()
            if not self.loop:
                return


class MicSource:
    """Frames from the default (or a chosen) input device via sounddevice."""

    def __init__(self, rate: int = 16000, channels: int = 1, frame_s: float = 0.2, device=None):
        self.rate = rate
        self.channels = channels
        self.frame = int(round(frame_s * rate))
        self.device = device

    async def frames(self) -> AsyncIterator[bytes]:
        import sounddevice  # only needed for --mic

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def callback(indata, frames, time_info, status):  # audio thread
            loop.call_soon_threadsafe(queue.put_nowait, bytes(indata))

        with sounddevice.RawInputStream(
            samplerate=self.rate,
            channels=self.channels,
            dtype="int16",
            blocksize=self.frame,
            device=self.device,
            callback=callback,
        ):
            while True:
                yield await queue.get()
