"""The ingest endpoint on a real daphne with real WebSocket clients (embedded mode)."""

from __future__ import annotations

import asyncio
import json
import secrets

import numpy as np
import pytest

from devices.protocol import CODES

from .wsutil import GoodStream, connect, expect_error, hello, open_stream, pcm_frame

BAD = "esd_" + "x" * 43


@pytest.fixture(scope="module")
def devices(live):
    names = ["good", "unexpected", "partial", "nonfinite", "large", "fast", "fuzz"]
    specs = {name: {} for name in names}
    specs["disabled"] = {"enabled": False}
    specs["expired"] = {"expired": True}
    return live.make_devices(specs)


async def case_hello_timeout(url, tokens):
    ws = await connect(url)
    return await expect_error(ws)


async def send_then_expect(url, first, then=()):
    ws = await connect(url)
    await ws.send(first)
    for message in then:
        try:
            await ws.send(message)
        except Exception:
            break
    return await expect_error(ws)


async def stream_then(url, token, frames, **kw):
    ws, _ = await open_stream(url, token, **kw)
    for frame in frames:
        try:
            await ws.send(frame)
        except Exception:
            break
    return await expect_error(ws)


def table(tokens):
    """error name -> coroutine factory provoking it."""
    nan = np.array([0.1, np.nan, 0.2], dtype="<f4").tobytes()
    return {
        "hello_timeout": lambda url: case_hello_timeout(url, tokens),
        "hello_expected": lambda url: send_then_expect(url, b"\x00\x01"),
        "bad_json": lambda url: send_then_expect(url, "{not json"),
        "bad_hello": lambda url: send_then_expect(url, json.dumps({"type": "hi"})),
        "unexpected_text": lambda url: stream_then(url, tokens["unexpected"], ["hi"]),
        "bad_token": lambda url: send_then_expect(url, hello(BAD)),
        "token_expired": lambda url: send_then_expect(url, hello(tokens["expired"])),
        "device_disabled": lambda url: send_then_expect(url, hello(tokens["disabled"])),
        "unsupported_rate": lambda url: send_then_expect(url, hello(BAD, rate=96000)),
        "unsupported_encoding": lambda url: send_then_expect(url, hello(BAD, encoding="mp3")),
        "unsupported_channels": lambda url: send_then_expect(url, hello(BAD, channels=6)),
        "partial_sample": lambda url: stream_then(url, tokens["partial"], [b"\x00" * 3201]),
        "non_finite": lambda url: stream_then(
            url, tokens["nonfinite"], [nan], encoding="pcm_f32le"
        ),
        "frame_too_large": lambda url: stream_then(url, tokens["large"], [b"\x00" * 64_000]),
        "too_fast": lambda url: stream_then(
            url, tokens["fast"], [pcm_frame(rate=8000)] * 400, rate=8000
        ),
    }


def test_every_error_has_its_close_code_while_a_good_stream_flows(live, devices):
    tokens = {name: d["token"] for name, d in devices.items()}
    cases = table(tokens)

    async def scenario():
        good = GoodStream(live.ws_url, tokens["good"])
        good_task = asyncio.create_task(good.run())
        await asyncio.wait_for(good.ready.wait(), 30)
        await asyncio.sleep(0.5)
        results = await asyncio.gather(*(make(live.ws_url) for make in cases.values()))
        await asyncio.sleep(1.0)
        good.stop()
        await good_task
        return dict(zip(cases, results, strict=True)), good

    results, good = asyncio.run(scenario())
    got = {
        name: (err and err["error"], err and err["code"], code)
        for name, (err, code) in results.items()
    }
    expected = {name: (name, CODES[name], CODES[name]) for name in cases}
    assert got == expected
    for err, _ in results.values():
        assert err["message"] and err["type"] == "error"
    # The good stream kept flowing: never closed by the server, everything sent was stored.
    assert good.closed_code in (None, 1000)
    assert good.sent >= 16000 * 5
    assert good.acked == good.sent, live.log()
    row = live.device_row(devices["good"]["id"])
    assert row["samples_received"] == good.sent
    assert row["frames_rejected"] == 0
    assert row["level_dbfs"] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.2)


def test_rejected_frames_are_counted_on_the_device(live, devices):
    row = live.device_row(devices["partial"]["id"], offline_within_s=10)
    assert row["frames_rejected"] >= 1
    assert "4030" in row["last_error"]
    assert row["connection_state"] == "offline"


def test_a_second_connection_replaces_the_first(live, devices):
    token = devices["good"]["token"]

    async def scenario():
        first, _ = await open_stream(live.ws_url, token)
        second, _ = await open_stream(live.ws_url, token)
        error, code = await expect_error(first)
        await second.send(pcm_frame())
        await second.close()
        return error, code

    error, code = asyncio.run(scenario())
    assert (error["error"], code) == ("replaced", CODES["replaced"])


def test_random_token_is_refused_quickly(live):
    async def scenario():
        ws = await connect(live.ws_url)
        await ws.send(hello("esd_" + secrets.token_urlsafe(32)))
        return await expect_error(ws, timeout=3)

    error, code = asyncio.run(scenario())
    assert code == CODES["bad_token"]


def test_metrics_count_accepted_frames_and_rejected_ones_by_reason(live, devices):
    import re

    import requests

    text = requests.get(f"{live.http_url}/metrics", timeout=30).text
    rejected = dict(
        re.findall(r'^eyescream_frames_rejected_total\{reason="(\w+)"\} (\S+)$', text, re.M)
    )
    for reason in ("partial_sample", "non_finite", "too_fast", "unexpected_text"):
        assert float(rejected.get(reason, 0)) >= 1, (reason, rejected)
    assert set(rejected) <= set(CODES), rejected
    assert "bad_token" not in rejected and "hello_timeout" not in rejected  # no frame yet
    accepted = re.search(r"^eyescream_frames_accepted_total (\S+)$", text, re.M)
    assert accepted and float(accepted.group(1)) > 0
