"""The wire protocol's pure parts: hello parsing, frame validation, the rate guard (no Django)."""

import json
from pathlib import Path

import numpy as np
import pytest

from devices import protocol as p


def hello_text(**overrides) -> str:
    data = {
        "type": "hello",
        "token": "t" * 43,
        "sample_rate": 16000,
        "encoding": "pcm_s16le",
        "channels": 1,
        "client": "test",
    }
    data.update(overrides)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_good_hello_parses():
    hello = p.parse_hello(hello_text(channels=2, encoding="pcm_f32le", stream_id="abc"))
    assert (hello.sample_rate, hello.encoding, hello.channels) == (16000, "pcm_f32le", 2)
    assert hello.bytes_per_frame == 8
    assert hello.max_frame_bytes == 16000 * 8
    assert p.parse_hello(json.dumps(hello.to_message())) == hello


@pytest.mark.parametrize(
    "text, error",
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('"hello"', "bad_json"),
        ("[" * 100_000, "bad_json"),
        (hello_text(type="hi"), "bad_hello"),
        (hello_text(token=...), "bad_hello"),
        (hello_text(token=""), "bad_hello"),
        (hello_text(token=5), "bad_hello"),
        (hello_text(client="x" * 500), "bad_hello"),
        (hello_text(stream_id=""), "bad_hello"),
        (hello_text(sample_rate=7999), "unsupported_rate"),
        (hello_text(sample_rate=48001), "unsupported_rate"),
        (hello_text(sample_rate=8009), "unsupported_rate"),
        (hello_text(sample_rate=15999), "unsupported_rate"),
        (hello_text(sample_rate=16000.0), "unsupported_rate"),
        (hello_text(sample_rate=True), "unsupported_rate"),
        (hello_text(sample_rate=...), "unsupported_rate"),
        (hello_text(encoding="mp3"), "unsupported_encoding"),
        (hello_text(encoding=None), "unsupported_encoding"),
        (hello_text(channels=3), "unsupported_channels"),
        (hello_text(channels="1"), "unsupported_channels"),
    ],
)
def test_bad_hellos_name_their_error(text, error):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_hello(text)
    assert info.value.error == error
    assert info.value.code == p.CODES[error]
    message = info.value.to_message()
    assert message["type"] == "error" and message["code"] == info.value.code
    assert len(message["message"]) < 300


def test_close_codes_are_unique_and_documented():
    codes = [c.code for c in p.CLOSE_CODES]
    assert len(codes) == len(set(codes))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for c in p.CLOSE_CODES:
        assert f"| {c.code} | `{c.error}` |" in doc, f"{c.code} {c.error} missing in protocol.md"


def test_decode_s16_and_f32():
    s16 = p.parse_hello(hello_text(channels=2))
    samples = np.array([[0, -32768], [16384, 32767]], dtype="<i2")
    audio = p.decode_frame(samples.tobytes(), s16)
    assert audio.dtype == np.float32 and audio.shape == (2, 2)
    assert audio[1, 0] == 0.5 and audio[0, 1] == -1.0
    f32 = p.parse_hello(hello_text(encoding="pcm_f32le"))
    values = np.array([0.25, -0.5], dtype="<f4")
    np.testing.assert_array_equal(p.decode_frame(values.tobytes(), f32)[:, 0], values)


def test_f32_beyond_full_scale_is_clipped_to_it():
    f32 = p.parse_hello(hello_text(encoding="pcm_f32le"))
    values = np.array([3e38, -3e38, 1.5, -1.0, 0.5], dtype="<f4")
    audio = p.decode_frame(values.tobytes(), f32)[:, 0]
    assert audio.tolist() == [1.0, -1.0, 1.0, -1.0, 0.5]
    assert np.isfinite(np.dot(audio, audio))  # its power no longer overflows


@pytest.mark.parametrize(
    "encoding, channels, payload, error",
    [
        ("pcm_s16le", 1, b"\x00\x01\x02", "partial_sample"),
        ("pcm_s16le", 2, b"\x00" * 6, "partial_sample"),
        ("pcm_f32le", 1, b"\x00" * 6, "partial_sample"),
        ("pcm_s16le", 1, b"", "partial_sample"),
        ("pcm_f32le", 1, np.array([0.1, np.nan], "<f4").tobytes(), "non_finite"),
        ("pcm_f32le", 1, np.array([np.inf], "<f4").tobytes(), "non_finite"),
        ("pcm_s16le", 1, b"\x00" * (2 * 16000 + 2), "frame_too_large"),
    ],
)
def test_bad_frames(encoding, channels, payload, error):
    hello = p.parse_hello(hello_text(encoding=encoding, channels=channels))
    with pytest.raises(p.ProtocolError) as info:
        p.decode_frame(payload, hello)
    assert info.value.error == error


def test_rate_guard_allows_burst_then_real_time_but_not_sustained_speed():
    guard = p.RateGuard(start=0.0, burst_s=30.0, max_speed=4.0)
    guard.add(30.0, now=0.0)  # a reconnect re-send burst
    for i in range(1, 100):  # then real time
        guard.add(1.0, now=float(i))
    fast = p.RateGuard(start=0.0, burst_s=30.0, max_speed=4.0)
    with pytest.raises(p.ProtocolError) as info:
        for i in range(1000):
            fast.add(1.0, now=i * 0.1)  # 10x real time
    assert info.value.error == "too_fast"
