"""A bounded flood of garbage sockets and faster-than-real-time streams, four times over: every
socket gets a documented close, the server stays up and keeps acking a well-behaved stream, and
its resident memory stays bounded (the later rounds do not grow it)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from devices.protocol import CODES

from .live import LiveServer, rss_mb
from .wsutil import connect, expect_error, hello, open_stream, pcm_frame

pytestmark = pytest.mark.slow
DOCUMENTED = set(CODES.values())
ROUNDS, WARM_ROUNDS, GARBAGE, STREAMS, STREAM_S = 4, 2, 60, 4, 30
# After two rounds have warmed everything up (the model, the resampling filters, the allocator's
# arenas), the two later rounds together may add at most this much. Measured on the 2-core
# development machine with the registry's model resolver and the ensemble's first stage:
# 6-17 MB alone, 20.2 MB once in a full-suite run (a round adds 1-15 MB, unevenly: the
# allocator, not a per-connection leak, which would grow by the same amount every round).
GROWTH_MB = 30.0


def garbage_frames(i: int) -> list:
    kinds = [
        ["x" * 5000],  # a hello over 4,096 characters
        [b"\x00\x01" * 100],  # binary before the hello
        ['{"type": "hello", "token": 7}'],
        [b"\x00" * (2 * 1024 * 1024)],  # over daphne's 1 MiB message limit
        [hello("esd_" + "y" * 43, rate=8009)],
        ["[]", "{}"],
    ]
    return kinds[i % len(kinds)]


async def garbage(url: str, frames: list) -> int | None:
    ws = await connect(url)
    for frame in frames:
        try:
            await ws.send(frame)
        except Exception:
            break
    _, code = await expect_error(ws, timeout=10)
    return code


async def fast_stream(url: str, token: str) -> int | None:
    """``STREAM_S`` seconds of audio as fast as the socket takes it, then text: a documented
    close either way (4004 after the audio, or 4033 if the server found it too fast)."""
    ws, _ = await open_stream(url, token)
    frame = pcm_frame(seconds=1.0)
    for _ in range(STREAM_S):
        try:
            await ws.send(frame)
        except Exception:
            break
    try:
        await ws.send("end")
    except Exception:
        pass
    _, code = await expect_error(ws, timeout=30)
    return code


async def flood(url: str, tokens: list[str]) -> list[int | None]:
    codes = []
    for start in range(0, GARBAGE, 20):
        batch = [garbage(url, garbage_frames(i)) for i in range(start, start + 20)]
        codes += await asyncio.gather(*batch)
    codes += await asyncio.gather(*(fast_stream(url, t) for t in tokens))
    return codes


async def still_acks(url: str, token: str) -> bool:
    ws, _ = await open_stream(url, token)
    for i in range(4):
        await ws.send(pcm_frame(offset=i * 3200))
    async with asyncio.timeout(15):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "ack" and message["samples"] == 4 * 3200:
                await ws.close()
                return True


def test_rss_stays_bounded_over_a_bounded_flood(tmp_path):
    server = LiveServer(tmp_path / "flood", {"OMP_NUM_THREADS": "1"})
    server.migrate()
    server.start()
    try:
        names = [f"flood-{i}" for i in range(STREAMS)] + ["steady"]
        made = server.make_devices({name: {} for name in names})
        tokens = [made[f"flood-{i}"]["token"] for i in range(STREAMS)]
        pid = server.process.pid
        rss = []
        for _ in range(ROUNDS):
            codes = asyncio.run(flood(server.ws_url, tokens))
            assert set(codes) <= DOCUMENTED, codes
            assert server.process.poll() is None, server.log()
            assert asyncio.run(still_acks(server.ws_url, made["steady"]["token"]))
            rss.append(rss_mb(pid))
        print(f"daphne RSS after each round (MB): {rss}; pid {pid}, cores {os.cpu_count()}")
        assert rss[-1] - rss[WARM_ROUNDS - 1] < GROWTH_MB, rss
    finally:
        server.stop()
