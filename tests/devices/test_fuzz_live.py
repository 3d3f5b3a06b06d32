"""Random bytes and random hello objects never hurt the server (hypothesis, real daphne)."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.protocol import CODES

from .wsutil import connect, expect_error, open_stream, pcm_frame

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
