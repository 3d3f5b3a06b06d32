"""Raw-websockets helpers for the live ingest tests."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import websockets


def hello(token: str, rate=16000, encoding="pcm_s16le", channels=1, **extra) -> str:
    return json.dumps(
        {
            "type": "hello",
            "token": token,
            "sample_rate": rate,
            "encoding": encoding,
            "channels": channels,
            "client": "test",
            **extra,
        }
    )


def connect(url: str):
    return websockets.connect(url, compression=None, proxy=None, open_timeout=10, max_size=2**22)


async def open_stream(url: str, token: str, **kw):
    ws = await connect(url)
    await ws.send(hello(token, **kw))
    ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert ready["type"] == "ready", ready
    return ws, ready


async def expect_error(ws, timeout: float = 10.0) -> tuple[dict | None, int | None]:
    """Read until the server closes: ``(its error message, the close code)``."""
    error = None
    try:
        async with asyncio.timeout(timeout):
            async for message in ws:
                if isinstance(message, str):
                    data = json.loads(message)
                    if data.get("type") == "error":
                        error = data
    except websockets.ConnectionClosed:
        pass
    except TimeoutError:
        return error, None
    await ws.wait_closed()
    return error, ws.close_code


def pcm_frame(rate=16000, seconds=0.2, amplitude=0.1, freq=440.0, offset=0) -> bytes:
    n = int(rate * seconds)
    t = (np.arange(n) + offset) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


class GoodStream:
    """A well-behaved real-time stream that must keep flowing while others misbehave."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.sent = 0
        self.acked = 0
        self.closed_code = None
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        ws, _ = await open_stream(self.url, self.token, stream_id="good-stream")
        receiver = asyncio.create_task(self._receive(ws))
        self.ready.set()
        t0 = time.monotonic()
        while not self._stop.is_set():
            await ws.send(pcm_frame(offset=self.sent))
            self.sent += 3200
            await asyncio.sleep(max(0.0, t0 + self.sent / 16000 - time.monotonic()))
        deadline = time.monotonic() + 4
        while self.acked < self.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await ws.close()
        receiver.cancel()

    async def _receive(self, ws) -> None:
        try:
            async for message in ws:
                data = json.loads(message)
                if data["type"] == "ack":
                    self.acked = data["samples"]
        except websockets.ConnectionClosed:
            pass
        self.closed_code = ws.close_code

    def stop(self) -> None:
        self._stop.set()
