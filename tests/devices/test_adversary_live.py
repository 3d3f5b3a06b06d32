"""Regression tests for what an adversarial probe of the ingest found, on a real daphne.

One device must not break other users' pages, odd sample rates must not stall the server,
oversized frames get the documented close code, a takeover counts audio once, and the dashboard
socket refuses pages of other sites.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import threading
import time

import numpy as np
import pytest
import requests
import websockets

from devices.protocol import CODES, SAMPLE_RATES

from .live import rss_mb
from .wsutil import connect, expect_error, hello, open_stream, pcm_frame

pytestmark = pytest.mark.slow

PASSWORD = "pw-for-adversary-tests"


@pytest.fixture(scope="module")
def operator(live):
    live.make_user("adv-operator", PASSWORD)
    return live.login("adv-operator", PASSWORD)


def strict_json(text: str):
    """JSON as a browser's ``JSON.parse`` reads it: no Infinity or NaN."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def page_data(html: str):
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page embeds no page-data"
    return strict_json(match.group(1))


def test_float_frames_beyond_full_scale_cannot_blank_anyones_map(live, operator):
    device = live.make_devices({"loud-float": {}})["loud-float"]
    frame = np.full(1600, 3e38, dtype="<f4").tobytes()

    async def scenario():
        ws, _ = await open_stream(live.ws_url, device["token"], encoding="pcm_f32le")
        for _ in range(30):
            await ws.send(frame)
        await asyncio.sleep(1.6)  # a health flush writes the level
        await ws.close()

    asyncio.run(scenario())
    row = live.device_row(device["id"], offline_within_s=10)
    assert row["level_dbfs"] == pytest.approx(0.0, abs=0.01)  # full scale, no more
    assert row["clipping"] is True

    api = operator.get(f"{live.http_url}/api/devices/")
    assert api.status_code == 200, api.text[:300]
    listed = {d["id"]: d for d in strict_json(api.text)}
    assert listed[device["id"]]["level_dbfs"] == pytest.approx(0.0, abs=0.01)
    page = operator.get(f"{live.http_url}/")
    assert page.status_code == 200
    levels = {d["id"]: d["level_dbfs"] for d in page_data(page.text)["devices"]}
    assert levels[device["id"]] == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("size", [1_048_578, 2 * 2**20, 16 * 2**20])
def test_frames_over_the_servers_message_limit_get_4032(live, size):
    device = live.make_devices({f"huge-{size}": {}})[f"huge-{size}"]

    async def scenario():
        ws = await websockets.connect(
            live.ws_url, compression=None, proxy=None, max_size=2**22, open_timeout=10
        )
        await ws.send(hello(device["token"]))
        assert json.loads(await ws.recv())["type"] == "ready"
        try:
            await ws.send(b"\x00" * size)
        except websockets.ConnectionClosed:
            pass
        return await expect_error(ws)

    error, code = asyncio.run(scenario())
    assert code == CODES["frame_too_large"]
    assert error is not None and error["error"] == "frame_too_large", error
    assert str(size) in error["message"]


def test_a_takeover_with_the_same_stream_id_counts_audio_once(live):
    device = live.make_devices({"taken-over": {}})["taken-over"]
    rate, sid = 16_000, "shared-stream"

    def frames(start: int, stop: int, size: int = 3_200):
        return [
            pcm_frame(seconds=min(size, stop - i) / rate, offset=i)
            for i in range(start, stop, size)
        ]

    async def acked(ws, at_least: int) -> int:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["type"] == "ack" and message["samples"] >= at_least:
                return message["samples"]

    async def scenario():
        a, _ = await open_stream(live.ws_url, device["token"], stream_id=sid)
        for frame in frames(0, 33_600):
            await a.send(frame)
        await acked(a, 33_600)
        for frame in frames(33_600, 40_000):  # not yet acked when B says hello
            await a.send(frame)
        b, ready = await open_stream(live.ws_url, device["token"], stream_id=sid)
        resume_at = ready["resume_at"]
        error, code = await expect_error(a)
        for frame in frames(resume_at, 56_000):
            await b.send(frame)
        await acked(b, 56_000)
        await b.close()
        return resume_at, code

    resume_at, code = asyncio.run(scenario())
    assert code == CODES["replaced"]
    assert 33_600 <= resume_at <= 40_000
    row = live.device_row(device["id"], offline_within_s=10)
    assert row["samples_received"] == 56_000
    assert row["seconds_received"] == pytest.approx(56_000 / rate)


def test_the_dashboard_socket_refuses_a_foreign_origin(live, operator):
    url = f"ws://127.0.0.1:{live.port}/ws/alerts/"
    cookie = f"sessionid={operator.cookies['sessionid']}"

    async def attempt(origin: str):
        try:
            async with websockets.connect(
                url, origin=origin, additional_headers={"Cookie": cookie}, proxy=None
            ) as ws:
                await ws.send(json.dumps({"type": "ping"}))
                return "accepted"
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt("http://evil.example")) == 403
    assert asyncio.run(attempt(f"http://127.0.0.1:{live.port}")) == "accepted"


def test_many_sample_rates_at_once_keep_http_fast_and_memory_bounded(live):
    """Waves of 40 concurrent hellos at odd rates (8,009-8,555 Hz) are refused at once while
    HTTP answers within 0.5 s (p99); streams at every accepted rate then start together, and
    daphne's memory stays put through both."""
    odd_rates = [8_009 + 14 * i for i in range(40)]
    assert all(r not in SAMPLE_RATES for r in odd_rates) and max(odd_rates) <= 8_555
    names = [f"rate-{i}" for i in range(len(SAMPLE_RATES) + 1)]
    tokens = [d["token"] for d in live.make_devices({n: {} for n in names}).values()]

    async def stream(token: str, rate: int, seconds: float = 1.0):
        ws, ready = await open_stream(live.ws_url, token, rate=rate)
        for i in range(int(seconds / 0.2)):
            await ws.send(pcm_frame(rate=rate, offset=i * int(rate * 0.2)))
            await asyncio.sleep(0.2)
        await ws.close()
        return ready["sample_rate"]

    async def odd(token: str, rate: int):
        ws = await connect(live.ws_url)
        await ws.send(hello(token, rate=rate))
        return await expect_error(ws, timeout=5)

    async def odd_waves(waves: int = 5):
        refused = []
        for _ in range(waves):
            refused += await asyncio.gather(*(odd(tokens[0], r) for r in odd_rates))
            await asyncio.sleep(0.5)
        return refused

    asyncio.run(stream(tokens[-1], 16_000, seconds=2.0))  # the process's first stream
    pid = live.process.pid
    before = rss_mb(pid)
    latencies: list[float] = []
    stop = threading.Event()

    def poll_http():
        with requests.Session() as session:
            while not stop.is_set():
                t0 = time.perf_counter()
                assert session.get(f"{live.http_url}/accounts/login/", timeout=10).ok
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_http)
    poller.start()
    try:
        refused = asyncio.run(odd_waves())
    finally:
        stop.set()
        poller.join()
    assert len(refused) == 200
    assert all(code == CODES["unsupported_rate"] for _, code in refused), refused[:3]
    assert "8009" in refused[0][0]["message"] or "must be one of" in refused[0][0]["message"]
    p99 = statistics.quantiles(latencies, n=100)[98]
    assert len(latencies) >= 20 and p99 < 0.5, (len(latencies), p99)

    async def every_rate():
        return await asyncio.gather(
            *(stream(t, r, seconds=2.0) for t, r in zip(tokens, SAMPLE_RATES, strict=False))
        )

    assert sorted(asyncio.run(every_rate())) == sorted(SAMPLE_RATES)
    assert rss_mb(pid) - before < 150
