"""SIGKILL of a scaled-mode process while a device streams, and a Redis restart: the reference
client goes on (resuming after a reconnect), the scream after the recovery becomes exactly one
alert, the alert reaches the dashboard only with its snippet already stored (fetched the moment
``alert.created`` arrives), and its picture follows.

Real processes: daphne, a scoring worker (``runworker detection-score``), a Celery worker,
PostgreSQL, and a Redis server of the test's own (restarting it disturbs no other test).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
from functools import partial

import numpy as np
import pytest
import soundfile

from devices.client.streamer import Streamer
from tests.devices.live import LiveServer, child_pids, free_port, stop_process

from .e2e import Dashboard, alert_rows, fetch, operator_session, postgres_database
from .test_end_to_end import background_then_scream, gated_frames, model_dir
from .workers import ScoringWorker, start_celery_worker, worker_answers

pytestmark = [pytest.mark.slow, pytest.mark.scaled]


class PrivateRedis:
    """``redis-server`` on a free port, no persistence: ``kill()`` and ``start()`` it again."""

    def __init__(self, folder) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (the scaled crash tests need one)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        stop_process(self.process, kill=True)


@pytest.fixture
def scaled(tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    with postgres_database(f"eyescream_crash_{os.getpid()}") as database_url:
        env = {
            "REDIS_URL": redis.url,
            "DATABASE_URL": database_url,
            "EYESCREAM_MODEL_DIR": str(model_dir()),
            "OMP_NUM_THREADS": "1",
        }
        server = LiveServer(tmp_path / "data", env)
        worker = ScoringWorker(server.env, tmp_path / "worker.log")
        world = {"server": server, "worker": worker, "redis": redis, "celery": None}
        try:
            server.migrate()
            world["device"] = server.make_devices({"crash": {}})["crash"]
            world["session"] = operator_session(server)
            server.start(timeout=60)
            worker.start()
            worker_ready(redis.url)
            world["celery"] = start_celery_worker(server.env, tmp_path / "celery.log")
            yield world
        finally:
            pids = child_pids(server.process.pid) if server.process else []
            worker.stop()
            server.stop()
            kill_all(pids)
            kill_celery(world)
            redis.kill()


def worker_ready(url: str, timeout: float = 240) -> None:
    """A scoring worker answers. A probe waits in the channel for 10 s at most (the layer's
    expiry), and a busy host may take longer to load the model: probe again until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(worker_answers(url, model_dir(), timeout=8))
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def kill_celery(world) -> None:
    if world["celery"] is not None:
        pool = child_pids(world["celery"].pid)
        stop_process(world["celery"], kill=True)
        kill_all(pool)
        world["celery"] = None


def crash(target: str, world) -> None:
    server, worker, redis = world["server"], world["worker"], world["redis"]
    if target == "scoring_worker":
        worker.kill()
        worker.start()
        worker_ready(redis.url)
    elif target == "daphne":
        writers = child_pids(server.process.pid)
        server.stop(kill=True)
        kill_all(writers)  # the alert writers go with their daphne
        server.start(timeout=60)
    elif target == "celery_worker":
        kill_celery(world)
        world["celery"] = start_celery_worker(server.env, server.data_dir / "celery.log")
    elif target == "redis":
        redis.kill()
        time.sleep(1.0)
        redis.start()


class CheckingDashboard(Dashboard):
    """Also notes, the moment each alert message arrives, whether its snippet file is stored
    (checked before anything else runs: no later write or replacement can interfere)."""

    def __init__(self, server: LiveServer, session: str) -> None:
        super().__init__(server, session)
        self.media = server.data_dir / "media"
        self.snippets: list[tuple[str, str, bool]] = []  # (type, url, stored)

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message)
            url = (data.get("alert") or {}).get("snippet_url")
            if url:
                stored = (self.media / url.removeprefix("/media/")).is_file()
                self.snippets.append((data["type"], url, stored))
            self.messages.append((time.time(), data))


def pictures(dashboard, device_id: int) -> list[str]:
    updates = dashboard.alerts("alert.updated", device_id)
    return [a["spectrogram_url"] for _, a in updates if a.get("spectrogram_url")]


async def newest_picture(dashboard, server, device_id: int, session: str) -> bytes:
    """The alert's newest picture. A picture of the final snippet replaces (and removes) the one
    drawn while the incident ran, just before its own update is broadcast: a URL that is gone
    is followed by a newer one."""
    gone: set[str] = set()
    while True:
        url = pictures(dashboard, device_id)[-1]
        try:
            return await asyncio.to_thread(fetch, server, url, session)
        except urllib.error.HTTPError as error:
            if error.code != 404 or url in gone:
                raise
            gone.add(url)
            await dashboard.wait_for(
                lambda: pictures(dashboard, device_id)[-1] not in gone, 30, "a newer picture"
            )


@pytest.mark.parametrize("target", ["scoring_worker", "daphne", "celery_worker", "redis"])
def test_a_scream_after_a_crash_becomes_exactly_one_alert_with_its_snippet(scaled, real_v1, target):
    server, device = scaled["server"], scaled["device"]
    background, scream, rate = background_then_scream(real_v1)
    snippets: list[tuple[str, str, bool]] = []

    async def scenario():
        go = asyncio.Event()
        streamer = Streamer(
            server.ws_url, device["token"], rate, 1, min_backoff_s=0.2, max_backoff_s=0.5
        )
        task = asyncio.create_task(streamer.run(gated_frames(background, scream, rate, go, 2.0)))
        deadline = time.monotonic() + 60
        while streamer.report.acked == 0:
            assert time.monotonic() < deadline, "the stream never started"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(crash, target, scaled)
        acked = streamer.report.acked
        deadline = time.monotonic() + 60
        while streamer.report.acked <= acked:  # stored again after the recovery
            assert time.monotonic() < deadline, f"no ack after the {target} crash"
            await asyncio.sleep(0.1)
        async with CheckingDashboard(server, scaled["session"]) as dashboard:
            go.set()
            await dashboard.wait_for(
                lambda: dashboard.alerts("alert.created", device["id"]), 60, "the alert"
            )
            alert = dashboard.alerts("alert.created", device["id"])[0][1]
            report = await asyncio.wait_for(task, 120)
            await dashboard.wait_for(
                lambda: dashboard.closing_update(device["id"]), 30, "the closing update"
            )
            await dashboard.wait_for(
                lambda: pictures(dashboard, device["id"]), 60, "the alert's picture"
            )
            picture = await newest_picture(dashboard, server, device["id"], scaled["session"])
            snippets.extend(dashboard.snippets)
        return report, alert, picture

    report, alert, picture = asyncio.run(scenario())
    assert picture.startswith(b"\x89PNG")
    assert report.dropped == 0, report
    if target == "daphne":
        assert report.connections == 2, report
    rows = alert_rows(server, [device["id"]])
    assert len(rows) == 1, rows
    assert rows[0]["id"] == alert["id"] and rows[0]["ended"]
    assert snippets and snippets[0][0] == "alert.created"
    assert all(stored for _, _, stored in snippets), snippets  # never shown before it is stored
    final = fetch(server, "/media/" + rows[0]["snippet"], scaled["session"])
    audio, snippet_rate = soundfile.read(io.BytesIO(final), dtype="float32")
    assert snippet_rate == rate and len(audio) > rate


ROWS = """
import json
from alerts.models import Alert
rows = [
    {{"id": a.id, "ended": a.ended_at is not None, "end_reason": a.end_reason,
      "snippet": a.snippet.name}}
    for a in Alert.objects.filter(device_id={device_id}).order_by("id")
]
print("RESULT" + json.dumps(rows))
"""


def alerts_of(server: LiveServer, device_id: int) -> list[dict]:
    return json.loads(server.shell(ROWS.format(device_id=device_id)).split("RESULT", 1)[1])


SWEEP = "from alerts.tasks import sweep_offline_devices; sweep_offline_devices()"


def test_an_alert_open_when_daphne_is_killed_is_closed_by_the_sweep(scaled, real_v1):
    """Killed mid-incident: the alert row is complete (snippet stored), and once the device is
    connected again through another connection the beat's sweep closes it (``stream_lost``)."""
    server, device = scaled["server"], scaled["device"]
    background, scream, rate = background_then_scream(real_v1)
    long_scream = np.concatenate([scream, scream, scream])

    async def scenario() -> int:
        go = asyncio.Event()
        streamer = Streamer(
            server.ws_url, device["token"], rate, 1, min_backoff_s=0.2, max_backoff_s=0.5
        )
        frames = gated_frames(background, long_scream, rate, go, 1.0)
        task = asyncio.create_task(streamer.run(frames))
        async with CheckingDashboard(server, scaled["session"]) as dashboard:
            go.set()
            await dashboard.wait_for(
                lambda: dashboard.alerts("alert.created", device["id"]), 60, "the alert"
            )
            first = dashboard.alerts("alert.created", device["id"])[0][1]
            assert all(stored for _, _, stored in dashboard.snippets), dashboard.snippets
        await asyncio.to_thread(crash, "daphne", scaled)
        report = await asyncio.wait_for(task, 120)
        assert report.connections == 2 and report.dropped == 0, report
        return first["id"]

    first_id = asyncio.run(scenario())
    rows = partial(alerts_of, server, device["id"])
    before = {row["id"]: row for row in rows()}
    assert not before[first_id]["ended"]  # open when its daphne died
    server.shell(SWEEP)
    after = rows()
    closed = next(row for row in after if row["id"] == first_id)
    assert closed["ended"] and closed["end_reason"] == "stream_lost"
    assert all(row["ended"] for row in after), after  # nothing left half-done
    media = server.data_dir / "media"
    assert all((media / row["snippet"]).is_file() for row in after), after
