"""Connection and byte-rate limits on a real daphne (docs/protocol.md, "Limits"): an address
that opens too many sockets, a device that reconnects too often and an address that sends too
many bytes are each closed with their documented code, while other streams go on."""

from __future__ import annotations

import asyncio
import json

import pytest

from devices.protocol import CODES

from .live import LiveServer
from .wsutil import connect, expect_error, hello, open_stream, pcm_frame

LIMITS = {
    "EYESCREAM_WS_ADDRESS_CONNECTIONS": "6",
    "EYESCREAM_WS_ADDRESS_CONNECTS_BURST": "40",
    "EYESCREAM_WS_ADDRESS_CONNECTS_PER_S": "5",
    "EYESCREAM_WS_TOKEN_CONNECTS_BURST": "3",
    "EYESCREAM_WS_TOKEN_CONNECTS_PER_S": "0.05",
    "EYESCREAM_WS_ADDRESS_BYTES_PER_S": "150000",  # 10 s burst: 1.5 MB
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("limits"), LIMITS)
    server.migrate()
    server.start()
    yield server
    server.stop()


async def acked(ws, samples: int) -> bool:
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "ack" and message["samples"] >= samples:
                return True


def test_an_address_gets_4040_past_its_open_sockets_and_streams_go_on(limited):
    token = limited.make_devices({"sockets-mic": {}})["sockets-mic"]["token"]

    async def scenario():
        ws, _ = await open_stream(limited.ws_url, token)  # one streaming, five idle
        idle = [await connect(limited.ws_url) for _ in range(5)]
        over = await connect(limited.ws_url)
        refused = await expect_error(over, timeout=5)
        await ws.send(pcm_frame())
        still_streams = await acked(ws, 3200)
        await idle[0].close()
        await asyncio.sleep(0.3)
        again = await connect(limited.ws_url)
        await again.send(hello("esd_" + "x" * 43))
        after_close = await expect_error(again, timeout=5)
        for socket in [ws, *idle[1:]]:
            await socket.close()
        return refused, still_streams, after_close

    (error, code), still_streams, (_, code_after) = asyncio.run(scenario())
    assert code == CODES["too_many_connections"] == 4040
    assert error["error"] == "too_many_connections" and "6 connections" in error["message"]
    assert still_streams
    assert code_after == CODES["bad_token"]  # a freed place is usable again


def test_a_reconnect_storm_of_one_token_gets_4040_and_other_devices_connect(limited):
    tokens = limited.make_devices({"storm-mic": {}, "calm-mic": {}})

    async def scenario():
        codes = []
        for _ in range(5):
            ws = await connect(limited.ws_url)
            await ws.send(hello(tokens["storm-mic"]["token"]))
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            codes.append(message.get("code", message["type"]))
            await ws.close()
        calm, ready = await open_stream(limited.ws_url, tokens["calm-mic"]["token"])
        await calm.close()
        return codes, ready

    codes, ready = asyncio.run(scenario())
    assert codes == ["ready", "ready", "ready", 4040, 4040]
    assert ready["device"]["name"] == "calm-mic"


def test_an_address_over_its_byte_rate_gets_4033(limited):
    tokens = limited.make_devices({"bytes-a": {}, "bytes-b": {}})
    second = pcm_frame(seconds=1.0)  # 32,000 bytes; each stream stays under its own 45 s burst

    async def scenario():
        a, _ = await open_stream(limited.ws_url, tokens["bytes-a"]["token"])
        b, _ = await open_stream(limited.ws_url, tokens["bytes-b"]["token"])
        closed = None
        for _ in range(40):
            for ws, name in ((a, "a"), (b, "b")):
                try:
                    await ws.send(second)
                except Exception:
                    closed = closed or name
            if closed:
                break
            await asyncio.sleep(0.01)
        results = [await expect_error(ws, timeout=5) for ws in (a, b)]
        return results

    results = asyncio.run(scenario())
    errors = [error for error, _ in results if error]
    assert errors and all(e["error"] == "too_fast" for e in errors)
    assert any("this address" in e["message"] for e in errors)
