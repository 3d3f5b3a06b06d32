"""A killed server and an outage, with the shipped model and real audio (embedded mode).

An alert open when the server is killed is closed at the restart (``stream_lost``), and the
dashboard's API shows it ended. Audio captured during an outage and re-sent after it gets alert
times from the device's capture clock: the snippet's start is the time that audio was captured.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from datetime import datetime

import numpy as np
import pytest
import soundfile

from devices.client.streamer import Streamer
from tests.devices.live import LiveServer

from .e2e import Dashboard, fetch, locate
from .test_end_to_end import background_then_scream, model_dir, start

pytestmark = pytest.mark.slow

ALERT = """
import json
from alerts.models import Alert
rows = [
    {{"id": a.id, "started_at": a.started_at.timestamp(),
      "ended_at": a.ended_at and a.ended_at.timestamp(), "end_reason": a.end_reason,
      "created": a.created.timestamp(), "time_source": a.time_source,
      "snippet_started_at": a.snippet_started_at.timestamp(), "snippet": a.snippet.url}}
    for a in Alert.objects.filter(device_id={device_id}).order_by("id")
]
print("RESULT" + json.dumps(rows))
"""


@pytest.fixture
def embedded(tmp_path):
    server = LiveServer(
        tmp_path / "data", {"EYESCREAM_MODEL_DIR": str(model_dir()), "OMP_NUM_THREADS": "1"}
    )
    try:
        yield {"server": server, **start(server)}
    finally:
        server.stop()


def alerts_of(server: LiveServer, device_id: int) -> list[dict]:
    return json.loads(server.shell(ALERT.format(device_id=device_id)).split("RESULT", 1)[1])


class Capture:
    """A recording released in real time, 200 ms frames, remembering when each was captured."""

    def __init__(self, audio: np.ndarray, rate: int) -> None:
        self.audio, self.rate = audio, rate
        self.frame = rate // 5
        self.captured: list[tuple[int, float]] = []  # (first sample, capture time)
        self.done = asyncio.Event()

    async def frames(self):
        t0 = time.time()
        for first in range(0, len(self.audio), self.frame):
            chunk = self.audio[first : first + self.frame]
            release = t0 + (first + len(chunk)) / self.rate
            await asyncio.sleep(max(0.0, release - time.time()))
            self.captured.append((first, release - len(chunk) / self.rate))
            yield chunk.tobytes()
        self.done.set()

    def time_of(self, sample: int) -> float:
        start, at = max((s, t) for s, t in self.captured if s <= sample)
        return at + (sample - start) / self.rate


def test_an_alert_open_when_the_server_is_killed_is_closed_at_its_restart(embedded, real_v1):
    server = embedded["server"]
    device = embedded["devices"]["scream"]
    background, scream, rate = background_then_scream(real_v1)
    # The scream, then the scream again: the incident is still open when the server dies.
    capture = Capture(np.concatenate([background[: 2 * rate], scream, scream]), rate)

    async def scenario() -> int:
        streamer = Streamer(server.ws_url, device["token"], rate, 1, min_backoff_s=0.2)
        async with Dashboard(server, embedded["session"]) as dashboard:
            task = asyncio.create_task(streamer.run(capture.frames()))
            await dashboard.wait_for(
                lambda: dashboard.alerts("alert.created", device["id"]), 30, "the alert"
            )
            server.stop(kill=True)
        task.cancel()
        return dashboard.alerts("alert.created", device["id"])[0][1]["id"]

    alert_id = asyncio.run(scenario())
    (before,) = alerts_of(server, device["id"])
    assert before["id"] == alert_id and before["ended_at"] is None  # open at the crash
    server.start(timeout=60)
    (after,) = alerts_of(server, device["id"])
    assert after["end_reason"] == "stream_lost"
    assert after["started_at"] <= after["ended_at"] <= time.time()
    listed = json.loads(fetch(server, "/api/alerts/", embedded["session"]))
    shown = next(a for a in listed if a["id"] == alert_id)
    assert shown["open"] is False and shown["end_reason"] == "stream_lost"


def test_audio_captured_during_an_outage_keeps_its_capture_time(embedded, real_v1):
    server = embedded["server"]
    device = embedded["devices"]["restart"]
    background, scream, rate = background_then_scream(real_v1)
    lead = np.tile(background, (3, 1))[: 8 * rate]  # streamed, and stored, before the outage
    audio = np.concatenate([lead, scream, background[: 2 * rate]])
    capture = Capture(audio, rate)

    async def scenario() -> float:
        streamer = Streamer(
            server.ws_url, device["token"], rate, 1, min_backoff_s=0.2, max_backoff_s=0.5
        )
        task = asyncio.create_task(streamer.run(capture.frames()))
        deadline = time.monotonic() + 30
        while streamer.report.acked == 0:  # streaming, and stored, before the outage
            assert time.monotonic() < deadline, "the stream never started"
            await asyncio.sleep(0.1)
        assert len(capture.captured) * capture.frame < len(lead)  # still before the scream
        server.stop(kill=True)  # the outage: the scream is captured while the server is down
        await asyncio.wait_for(capture.done.wait(), 60)
        server.start(timeout=60)
        reconnected = time.time()
        report = await asyncio.wait_for(task, 60)
        assert report.connections == 2 and report.dropped == 0, report
        return reconnected

    reconnected = asyncio.run(scenario())
    rows = alerts_of(server, device["id"])
    assert len(rows) == 1, rows
    alert = rows[0]
    assert alert["time_source"] == "device"
    assert alert["started_at"] <= alert["created"]
    assert alert["started_at"] < reconnected  # when it happened, not when it arrived
    data = fetch(server, alert["snippet"], embedded["session"])
    snippet, snippet_rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert snippet_rate == rate
    offset, correlation = locate(snippet, audio[:, 0].astype(np.float32) / 32768)
    assert correlation > 0.99
    captured = capture.time_of(offset)
    hop_s = 0.1
    assert abs(alert["snippet_started_at"] - captured) <= hop_s, (
        datetime.fromtimestamp(alert["snippet_started_at"]),
        datetime.fromtimestamp(captured),
    )
