"""The device ingest wire protocol: messages, limits, close codes and frame validation.

Pure Python + NumPy (no Django): the server consumer, the reference client and the tests all
share these definitions. ``docs/protocol.md`` is the prose version of this module.

A session::

    client -> {"type": "hello", "token": ..., "sample_rate": 16000, "encoding": "pcm_s16le",
               "channels": 1, "client": "pi-kitchen/1.0", "stream_id": "optional"}
    server -> {"type": "ready", ...}          (or {"type": "error", ...} + close)
    client -> binary frames of interleaved little-endian PCM
    server -> {"type": "ack", "samples": N}   (about once a second: samples stored durably)

Every error is a JSON ``{"type": "error", "code", "error", "message"}`` text frame followed by a
close frame with the same ``code``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

PATH = "/ws/devices/stream/"
PROTOCOL_VERSION = 1

# The rates audio hardware and browsers run at. Each is resampled to the model's rate by a
# small filter built in milliseconds; an odd rate such as 8,009 Hz would need a filter with one
# phase per output sample of a second (18 MB, seconds to build), so odd rates are refused and a
# client converts such audio first (the reference client does).
SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
MIN_SAMPLE_RATE = min(SAMPLE_RATES)
MAX_SAMPLE_RATE = max(SAMPLE_RATES)
ENCODINGS = {"pcm_s16le": np.dtype("<i2"), "pcm_f32le": np.dtype("<f4")}
CHANNELS = (1, 2)

HELLO_TIMEOUT_S = 5.0  # the hello must arrive this soon after the socket opens
MAX_HELLO_BYTES = 4_096
MAX_CLIENT_NAME = 100
MAX_STREAM_ID = 64
MAX_FRAME_S = 1.0  # one binary frame holds at most this much audio
# Sustained-rate guard: audio received may exceed wall-clock time by a burst (a reconnecting
# client re-sends up to ~30 s it buffered) plus this factor times the time since ``ready``.
RATE_BURST_S = 45.0
RATE_MAX_SPEED = 4.0


@dataclass(frozen=True)
class CloseCode:
    code: int
    error: str
    meaning: str


# The table in docs/protocol.md is generated from (and tested against) this list.
CLOSE_CODES = [
    CloseCode(4000, "hello_timeout", "no hello within HELLO_TIMEOUT_S of opening"),
    CloseCode(4001, "hello_expected", "the first frame was binary (or empty), not a hello"),
    CloseCode(4002, "bad_json", "a text frame that is not a JSON object"),
    CloseCode(4003, "bad_hello", "hello with a wrong type, a missing or malformed field"),
    CloseCode(4004, "unexpected_text", "a text frame after the hello (only binary PCM is allowed)"),
    CloseCode(4010, "bad_token", "unknown, rotated or revoked token"),
    CloseCode(4011, "token_revoked", "the token was revoked or rotated during the stream"),
    CloseCode(4012, "token_expired", "the token is past its expiry"),
    CloseCode(4013, "device_disabled", "the device is disabled (at hello or during the stream)"),
    CloseCode(4014, "replaced", "another connection of the same device said hello"),
    CloseCode(4020, "unsupported_rate", "sample_rate not one of SAMPLE_RATES"),
    CloseCode(4021, "unsupported_encoding", "encoding not pcm_s16le or pcm_f32le"),
    CloseCode(4022, "unsupported_channels", "channels not 1 or 2"),
    CloseCode(4030, "partial_sample", "frame length not a whole number of sample frames"),
    CloseCode(4031, "non_finite", "pcm_f32le frame with NaN or infinite samples"),
    CloseCode(4032, "frame_too_large", "frame holds more than MAX_FRAME_S of audio"),
    CloseCode(4033, "too_fast", "audio arrives far faster than real time (sustained)"),
    CloseCode(4040, "too_many_connections", "over a connection limit of the address or device"),
    CloseCode(1011, "server_error", "an unexpected server fault (the stream may reconnect)"),
]
CODES = {c.error: c.code for c in CLOSE_CODES}


class ProtocolError(Exception):
    """A violation of the protocol: carries the close code and the machine-readable name."""

    def __init__(self, error: str, message: str) -> None:
        if error not in CODES:
            raise ValueError(f"unknown protocol error {error!r}")
        super().__init__(message)
        self.error = error
        self.code = CODES[error]
        self.message = message

    def to_message(self) -> dict:
        return error_message(self.error, self.message)


def error_message(error: str, message: str) -> dict:
    return {"type": "error", "code": CODES[error], "error": error, "message": message}


@dataclass(frozen=True)
class Hello:
    token: str
    sample_rate: int
    encoding: str
    channels: int
    client: str
    stream_id: str | None = None
    # The device's clock: sample ``capture_sample`` of the stream (counted from the stream id's
    # first sample) was captured at ``capture_time`` (Unix seconds, UTC); later samples follow
    # at ``sample_rate`` without gaps. Alert times come from it (``capture_zero``).
    capture_time: float | None = None
    capture_sample: int = 0

    @property
    def dtype(self) -> np.dtype:
        return ENCODINGS[self.encoding]

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample frame (one sample of every channel)."""
        return self.dtype.itemsize * self.channels

    @property
    def max_frame_bytes(self) -> int:
        return int(MAX_FRAME_S * self.sample_rate) * self.bytes_per_frame

    def to_message(self) -> dict:
        message = {
            "type": "hello",
            "token": self.token,
            "sample_rate": self.sample_rate,
            "encoding": self.encoding,
            "channels": self.channels,
            "client": self.client,
        }
        if self.stream_id is not None:
            message["stream_id"] = self.stream_id
        if self.capture_time is not None:
            message["capture_time"] = self.capture_time
            message["capture_sample"] = self.capture_sample
        return message


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_json_object(text: str) -> dict:
    """A text frame as a JSON object, or ``bad_json``."""
    if len(text) > MAX_HELLO_BYTES:
        raise ProtocolError("bad_json", f"text frame longer than {MAX_HELLO_BYTES} characters")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"text frame is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "text frame must be a JSON object")
    return data


def parse_hello(text: str) -> Hello:
    """Validate the first text frame; raise ``ProtocolError`` naming what is wrong."""
    data = parse_json_object(text)
    if data.get("type") != "hello":
        raise ProtocolError("bad_hello", 'first message must have "type": "hello"')
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise ProtocolError("bad_hello", '"token" must be a non-empty string')
    rate = data.get("sample_rate")
    if not _is_int(rate) or rate not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SAMPLE_RATES)
        raise ProtocolError(
            "unsupported_rate", f'"sample_rate" must be one of {rates} Hz, got {rate!r}'[:200]
        )
    encoding = data.get("encoding")
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise ProtocolError(
            "unsupported_encoding",
            f'"encoding" must be one of {sorted(ENCODINGS)}, got {encoding!r}'[:200],
        )
    channels = data.get("channels", 1)
    if not _is_int(channels) or channels not in CHANNELS:
        raise ProtocolError(
            "unsupported_channels", f'"channels" must be 1 or 2, got {channels!r}'[:200]
        )
    client = data.get("client", "")
    if not isinstance(client, str) or len(client) > MAX_CLIENT_NAME:
        raise ProtocolError(
            "bad_hello", f'"client" must be a string of at most {MAX_CLIENT_NAME} characters'
        )
    stream_id = data.get("stream_id")
    if stream_id is not None and (
        not isinstance(stream_id, str) or not 0 < len(stream_id) <= MAX_STREAM_ID
    ):
        raise ProtocolError(
            "bad_hello", f'"stream_id" must be a string of 1 to {MAX_STREAM_ID} characters'
        )
    capture_time = data.get("capture_time")
    if capture_time is not None and not (
        isinstance(capture_time, int | float)
        and not isinstance(capture_time, bool)
        and math.isfinite(capture_time)
        and capture_time > 0
    ):
        raise ProtocolError("bad_hello", '"capture_time" must be Unix seconds (a positive number)')
    capture_sample = data.get("capture_sample", 0)
    if not _is_int(capture_sample) or capture_sample < 0:
        raise ProtocolError("bad_hello", '"capture_sample" must be an integer >= 0')
    return Hello(
        token,
        rate,
        encoding,
        channels,
        client,
        stream_id,
        None if capture_time is None else float(capture_time),
        capture_sample,
    )


def capture_zero(hello: Hello, resume_at: int) -> float | None:
    """The device's capture time (Unix s) of this connection's first sample, the stream's
    sample ``resume_at``; ``None`` when the hello carries no capture time."""
    if hello.capture_time is None:
        return None
    return hello.capture_time + (resume_at - hello.capture_sample) / hello.sample_rate


def decode_frame(payload: bytes, hello: Hello) -> np.ndarray:
    """Validate one binary frame and return float32 audio ``(n, channels)`` in [-1, 1]."""
    size = len(payload)
    if size == 0:
        raise ProtocolError("partial_sample", "empty binary frame")
    if size > hello.max_frame_bytes:
        raise ProtocolError(
            "frame_too_large",
            f"frame of {size} bytes exceeds {hello.max_frame_bytes} bytes ({MAX_FRAME_S:g} s)",
        )
    if size % hello.bytes_per_frame:
        raise ProtocolError(
            "partial_sample",
            f"frame of {size} bytes is not a whole number of {hello.bytes_per_frame}-byte"
            f" sample frames ({hello.encoding}, {hello.channels} channel(s))",
        )
    raw = np.frombuffer(payload, dtype=hello.dtype).reshape(-1, hello.channels)
    if hello.encoding == "pcm_s16le":
        return raw.astype(np.float32) * np.float32(1.0 / 32768.0)
    if not np.isfinite(raw).all():
        raise ProtocolError("non_finite", "pcm_f32le frame holds NaN or infinite samples")
    # Full scale is [-1, 1]: louder samples are clipped there, as a converter would (they count
    # as clipping in the device's health), so no device's numbers can overflow downstream.
    return np.clip(raw, -1.0, 1.0).astype(np.float32)


class RateGuard:
    """Rejects a sustained rate far above real time, allowing a re-send burst after reconnects.

    Audio received by wall time ``t`` (seconds since ``start``) may not exceed
    ``burst_s + max_speed * t`` seconds.
    """

    def __init__(
        self, start: float, burst_s: float = RATE_BURST_S, max_speed: float = RATE_MAX_SPEED
    ) -> None:
        self.start = start
        self.burst_s = burst_s
        self.max_speed = max_speed
        self.audio_s = 0.0

    def add(self, seconds: float, now: float) -> None:
        self.audio_s += seconds
        allowed = self.burst_s + self.max_speed * max(0.0, now - self.start)
        if self.audio_s > allowed:
            raise ProtocolError(
                "too_fast",
                f"received {self.audio_s:.1f} s of audio in {now - self.start:.1f} s; the limit"
                f" is {self.burst_s:g} s + {self.max_speed:g}x real time",
            )


def ready_message(
    device_id: int, device_name: str, hello: Hello, model_rate: int, resume_at: int
) -> dict:
    return {
        "type": "ready",
        "protocol": PROTOCOL_VERSION,
        "device": {"id": device_id, "name": device_name},
        "sample_rate": hello.sample_rate,
        "model_rate": model_rate,
        "max_frame_bytes": hello.max_frame_bytes,
        "resume_at": resume_at,
    }


def ack_message(samples: int) -> dict:
    return {"type": "ack", "samples": samples}
