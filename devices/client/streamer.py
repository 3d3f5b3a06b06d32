"""Stream frames to the server; reconnect with back-off and re-send what was not yet stored.

The server acks the samples of this ``stream_id`` it has stored and says on reconnect where to
resume (``ready.resume_at``), so a server restart or a short outage neither loses nor doubles
audio, within the bounded backlog (30 s by default).

A disabled device (4013 ``device_disabled``) is not a reason to give up: an admin may enable it
again. The client says so, keeps capturing into its bounded backlog, and asks again after
``disabled_min_s``, doubling to ``disabled_max_s``; once enabled it resumes by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace

import websockets

from ..protocol import CODES, Hello
from .backlog import Backlog

log = logging.getLogger("devices.client")

# Close codes after which reconnecting with the same settings cannot help; a disabled device
# waits for an admin to enable it again (a slower back-off of its own).
RETRY_ERRORS = ("server_error", "too_many_connections")
DISABLED = CODES["device_disabled"]
FATAL_CODES = {
    code for name, code in CODES.items() if name not in RETRY_ERRORS and code != DISABLED
}


class FatalServerError(Exception):
    def __init__(self, code: int, error: str, message: str) -> None:
        super().__init__(f"{code} {error}: {message}")
        self.code = code


class DeviceDisabled(ConnectionError):
    """The server says the device is disabled (4013): wait for an admin to enable it."""


def close_code(exc: BaseException) -> int | None:
    """The close code the server sent, where ``exc`` is a closed connection."""
    received = getattr(exc, "rcvd", None)
    return getattr(received, "code", None)


@dataclass
class StreamReport:
    stream_id: str
    captured: int = 0  # sample frames read from the source
    acked: int = 0  # sample frames the server has stored
    connections: int = 0
    disabled: int = 0  # times the server said the device is disabled
    dropped: int = 0  # sample frames lost to the bounded backlog
    errors: list[str] = field(default_factory=list)


class Streamer:
    def __init__(
        self,
        url: str,
        token: str,
        rate: int,
        channels: int,
        client_name: str = "devices.client",
        buffer_s: float = 30.0,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        capture_times: bool = True,
        disabled_min_s: float = 5.0,
        disabled_max_s: float = 60.0,
    ) -> None:
        self.url = url
        # Tell the server when the audio was captured (not for audio played faster than it
        # was captured: a file at --speed other than 1).
        self.capture_times = capture_times
        self.hello = Hello(token, rate, "pcm_s16le", channels, client_name, uuid.uuid4().hex)
        self.backlog = Backlog(int(buffer_s * rate), 2 * channels)
        self.report = StreamReport(self.hello.stream_id)
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.disabled_min_s = disabled_min_s
        self.disabled_max_s = disabled_max_s
        self._more = asyncio.Event()
        self._source_done = False
        self._fatal: FatalServerError | None = None

    async def run(self, frames) -> StreamReport:
        """Capture from ``frames`` (async iterator of bytes) and stream until all is stored."""
        capture = asyncio.create_task(self._capture(frames))
        try:
            await self._connect_loop()
        finally:
            capture.cancel()
        self.report.dropped = self.backlog.dropped
        return self.report

    async def _capture(self, frames) -> None:
        bytes_per_sample = 2 * self.hello.channels
        async for data in frames:
            # A frame is released when its last sample is captured.
            seconds = len(data) / bytes_per_sample / self.hello.sample_rate
            self.backlog.add(data, captured_at=time.time() - seconds)
            self.report.captured = self.backlog.end
            self._more.set()
        self._source_done = True
        self._more.set()

    def _finished(self) -> bool:
        return self._source_done and self.report.acked >= self.backlog.end

    async def _connect_loop(self) -> None:
        backoff = self.min_backoff_s
        disabled_wait = self.disabled_min_s
        while not self._finished():
            try:
                async with websockets.connect(
                    self.url, compression=None, proxy=None, open_timeout=5, max_size=2**20
                ) as ws:
                    await self._session(ws)
                    backoff, disabled_wait = self.min_backoff_s, self.disabled_min_s
                    if self._finished():
                        return
            except FatalServerError:
                raise
            except DeviceDisabled as exc:
                disabled_wait = await self._wait_while_disabled(exc, disabled_wait)
                continue
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                if self._fatal is not None:
                    raise self._fatal from None
                if close_code(exc) == DISABLED:
                    disabled_wait = await self._wait_while_disabled(exc, disabled_wait)
                    continue
                self.report.errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("connection lost (%s); retrying in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _wait_while_disabled(self, exc: BaseException, wait: float) -> float:
        """Say the device is disabled, wait, and return the next (doubled) wait."""
        self.report.disabled += 1
        self.report.errors.append(f"{DISABLED} device_disabled: {exc}")
        log.warning(
            "the server says this device is disabled (4013 device_disabled): an admin must "
            "enable it; still capturing (up to %.0f s kept), asking again in %.0f s",
            self.backlog.max_samples / self.hello.sample_rate,
            wait,
        )
        await asyncio.sleep(wait)
        return min(wait * 2, self.disabled_max_s)

    def _timed_hello(self) -> Hello:
        """The hello, with the capture time of the oldest sample still held (or of the next
        one): the server dates re-sent audio by when it was captured, not when it arrives."""
        if not self.capture_times:
            return self.hello
        if self.backlog.frames:
            first = self.backlog.frames[0]
            return replace(self.hello, capture_time=first.captured_at, capture_sample=first.start)
        return replace(self.hello, capture_time=time.time(), capture_sample=self.backlog.end)

    async def _session(self, ws) -> None:
        await ws.send(json.dumps(self._timed_hello().to_message()))
        ready = json.loads(await ws.recv())
        if ready.get("type") == "error":
            self._server_error(ready)
        self.report.connections += 1
        resume_at = int(ready.get("resume_at", 0))
        self._on_ack(resume_at)
        next_sample = max(resume_at, self.backlog.start)
        log.info("streaming from sample %d (backlog %d)", next_sample, self.backlog.held)
        receiver = asyncio.create_task(self._receive(ws))
        try:
            while not self._finished():
                for frame in self.backlog.frames_from(next_sample):
                    await ws.send(frame.data)
                    next_sample = frame.end
                if receiver.done():
                    receiver.result()  # raises what ended the connection
                    return
                self._more.clear()
                if next_sample >= self.backlog.end:
                    waiter = asyncio.create_task(self._more.wait())
                    await asyncio.wait({waiter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
        finally:
            receiver.cancel()
        await ws.close()

    async def _receive(self, ws) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                continue
            data = json.loads(message)
            if data.get("type") == "ack":
                self._on_ack(int(data["samples"]))
                self._more.set()
            elif data.get("type") == "error":
                self._server_error(data)
        raise ConnectionError("the server closed the connection")

    def _server_error(self, data: dict) -> None:
        code, error, message = data.get("code"), data.get("error"), data.get("message", "")
        if code == DISABLED:
            raise DeviceDisabled(message or "the device is disabled")
        if code in FATAL_CODES:
            self._fatal = FatalServerError(code, error, message)
            raise self._fatal
        self.report.errors.append(f"{code} {error}: {message}")
        raise ConnectionError(f"server error {code} {error}: {message}")

    def _on_ack(self, samples: int) -> None:
        self.report.acked = max(self.report.acked, samples)
        self.backlog.ack(samples)
