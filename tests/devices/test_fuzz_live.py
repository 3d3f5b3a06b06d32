"""Random bytes, hellos, floats, resume points and twin connections never hurt the server
(hypothesis, real daphne): every case gets its documented close code."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.protocol import CODES, MAX_HELLO_BYTES

from .wsutil import connect, expect_error, hello, open_stream, pcm_frame

DOCUMENTED = set(CODES.values())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
hello_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["hello", "hi"]) | json_values,
        "token": st.text(max_size=60) | json_values,
        "sample_rate": st.integers(0, 100_000) | json_values,
        "encoding": st.sampled_from(["pcm_s16le", "pcm_f32le", "opus"]) | json_values,
        "channels": st.integers(-1, 4) | json_values,
        "client": st.text(max_size=120),
        "stream_id": json_values,
    },
)
first_frames = (
    st.binary(max_size=2000) | st.text(max_size=200) | hello_objects.map(lambda d: json.dumps(d))
)


async def exchange(url: str, frames: list) -> tuple[dict | None, int | None]:
    ws = await connect(url)
    for frame in frames:
        try:
            await ws.send(frame)
        except Exception:
            break
    return await expect_error(ws, timeout=8)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(first_frames, min_size=1, max_size=3))
def test_random_first_frames_get_a_documented_error(live, frames):
    error, code = asyncio.run(exchange(live.ws_url, frames))
    assert code in DOCUMENTED
    assert error is not None and error["code"] == code


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    encoding=st.sampled_from(["pcm_s16le", "pcm_f32le"]),
    channels=st.sampled_from([1, 2]),
    payloads=st.lists(st.binary(max_size=5000), min_size=1, max_size=4),
)
def test_random_audio_frames_are_accepted_or_rejected_cleanly(
    live, fuzz_token, encoding, channels, payloads
):
    async def scenario():
        ws, _ = await open_stream(live.ws_url, fuzz_token, encoding=encoding, channels=channels)
        for payload in payloads:
            try:
                await ws.send(payload)
            except Exception:
                break
        await ws.send("end")  # text after hello: a deterministic documented close
        return await expect_error(ws, timeout=8)

    error, code = asyncio.run(scenario())
    assert code in DOCUMENTED and error["code"] == code
    assert error["error"] != "server_error"


def test_server_still_serves_after_the_fuzzing(live, fuzz_token):
    async def scenario():
        ws, ready = await open_stream(live.ws_url, fuzz_token, stream_id="after-fuzz")
        for i in range(8):
            await ws.send(pcm_frame(offset=i * 3200))
        for _ in range(30):
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] == "ack" and message["samples"] == 8 * 3200:
                break
        await ws.close()
        return message

    assert asyncio.run(scenario()) == {"type": "ack", "samples": 8 * 3200}


# ---------------------------------------------------------------- the cases of issue 25, point 1


@pytest.fixture(scope="module")
def tokens(live):
    """A device per test below: each test's hellos stay within one token's reconnect limit."""
    made = live.make_devices({f"fuzz-{n}": {} for n in ("resume", "twins", "floats")})
    return {name.removeprefix("fuzz-"): spec["token"] for name, spec in made.items()}


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=st.integers(MAX_HELLO_BYTES + 1, 4 * MAX_HELLO_BYTES))
def test_an_oversized_hello_is_bad_json(live, size):
    text = json.dumps({"type": "hello", "token": "t" * size})
    error, code = asyncio.run(exchange(live.ws_url, [text]))
    assert (error["error"], code) == ("bad_json", CODES["bad_json"])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    samples=st.lists(
        st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=400
    )
)
def test_float_frames_with_nan_or_inf_get_4031_and_finite_ones_pass(live, tokens, samples):
    frame = np.asarray(samples, dtype="<f4").tobytes()

    async def scenario():
        ws, _ = await open_stream(live.ws_url, tokens["floats"], encoding="pcm_f32le")
        await ws.send(frame)
        await ws.send("end")
        return await expect_error(ws, timeout=8)

    error, code = asyncio.run(scenario())
    expected = "non_finite" if not np.all(np.isfinite(samples)) else "unexpected_text"
    assert (error["error"], code) == (expected, CODES[expected])


positions = st.integers(-5, 2**64) | st.floats(allow_nan=True, allow_infinity=True) | st.none()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    stream_id=st.sampled_from(["run-a", "run-b", None]),
    capture_sample=positions,
    capture_time=st.floats(allow_nan=True, allow_infinity=True) | st.none(),
    frames=st.integers(0, 3),
)
def test_resumes_gaps_and_rewinds_are_acked_in_order_or_refused(
    live, tokens, stream_id, capture_sample, capture_time, frames
):
    """A random resume point and capture clock: the hello is ready (then every ack lies between
    ``resume_at`` and ``resume_at`` plus what was sent, never beyond) or refused ``bad_hello``."""
    extra = {"stream_id": stream_id} if stream_id else {}
    if capture_time is not None:
        extra["capture_time"] = capture_time
    if capture_sample is not None:
        extra["capture_sample"] = capture_sample

    async def scenario():
        ws = await connect(live.ws_url)
        await ws.send(hello(tokens["resume"], **extra))
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if first["type"] != "ready":
            await ws.wait_closed()
            return first, ws.close_code, []
        for i in range(frames):
            await ws.send(pcm_frame(offset=i * 3200))
        acks = []
        if frames:
            async with asyncio.timeout(10):
                while not acks or acks[-1] < first["resume_at"] + frames * 3200:
                    message = json.loads(await ws.recv())
                    if message["type"] == "ack":
                        acks.append(message["samples"])
        await ws.send("end")
        _, code = await expect_error(ws)
        return first, code, acks

    first, code, acks = asyncio.run(scenario())
    if first["type"] == "ready":
        assert code == CODES["unexpected_text"]
        start = first["resume_at"]
        assert start == 0 or stream_id is not None
        assert acks == sorted(acks) and all(start <= a <= start + frames * 3200 for a in acks)
    else:
        assert (first["error"], code) == ("bad_hello", CODES["bad_hello"])


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(count=st.integers(2, 4), late_frames=st.integers(0, 2))
def test_two_or_more_connections_with_one_token_leave_the_newest_streaming(
    live, tokens, count, late_frames
):
    async def scenario():
        sockets = [(await open_stream(live.ws_url, tokens["twins"]))[0] for _ in range(count)]
        older = []
        for ws in sockets[:-1]:
            for i in range(late_frames):  # audio on a replaced socket is never counted
                try:
                    await ws.send(pcm_frame(offset=i * 3200))
                except Exception:
                    break
            older.append(await expect_error(ws))
        newest = sockets[-1]
        await newest.send(pcm_frame())
        async with asyncio.timeout(10):
            while (message := json.loads(await newest.recv()))["type"] != "ack":
                pass
        await newest.close()
        return older, message

    older, ack = asyncio.run(scenario())
    assert [(e["error"], c) for e, c in older] == [("replaced", CODES["replaced"])] * (count - 1)
    assert ack["samples"] == 3200
