"""Scaled mode: a real Celery worker on the Redis broker renders the picture of an alert
stored in PostgreSQL, and runs the offline sweep sent to it through the broker; a running
incident's scores are written by the batched UPDATE on PostgreSQL."""

import json
import os
import signal
import subprocess
import time
import uuid

import psycopg
import pytest
from PIL import Image

from tests.devices.live import REPO, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.scaled]

REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own for this test's broker
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"

CREATE = """
import json
from datetime import timedelta
import numpy as np
from django.utils import timezone
from alerts.services import open_alert
from devices.models import Device, Location, Site
site = Site.objects.create(name="Depot", latitude=48.1, longitude=11.5)
spot = Location.objects.create(site=site, name="Gate")
mic = Device.objects.create(location=spot, name="gate-mic")
stale = Device.objects.create(location=spot, name="stale-mic", connection_state="online",
                              last_seen=timezone.now() - timedelta(hours=1))
t = np.arange(4 * 16000) / 16000
audio = (0.3 * np.sin(2 * np.pi * 1200 * t)).astype(np.float32)
now = timezone.now()
alert = open_alert(device_id=mic.pk, started_at=now, peak_score=0.9, mean_score=0.7,
                   score_curve=[[2.0, 0.7], [2.1, 0.9]], model_version="scaled-test",
                   snippet=audio, snippet_rate=16000,
                   snippet_started_at=now - timedelta(seconds=2))
from alerts.services import RunningScores, update_running_alerts
running = update_running_alerts({alert.pk: RunningScores(0.97, 0.75, [[2.0, 0.7], [2.1, 0.97]])})
from alerts.tasks import sweep_offline_devices
sweep_offline_devices.delay()
print("RESULT" + json.dumps({"alert": alert.pk, "stale": stale.pk, "running": running}))
"""


def services_available() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return f"Redis is not reachable at {REDIS_URL}"
    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=2).close()
    except psycopg.OperationalError:
        return f"PostgreSQL is not reachable at {ADMIN_DSN}"
    return None


@pytest.fixture
def database():
    reason = services_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"eyescream_alerts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(query, dsn, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(query).fetchone()
            if predicate(row):
                return row
            time.sleep(0.2)
    return None


def test_celery_worker_renders_the_alert_picture_and_sweeps_devices(database, tmp_path):
    import redis

    server = LiveServer(tmp_path, extra_env={"REDIS_URL": REDIS_URL, "DATABASE_URL": database})
    server.migrate()
    worker_log = open(tmp_path / "celery.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "celery"),
            "-A",
            "eyescream_site",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=REPO,
        env=server.env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        ids = json.loads(server.shell(CREATE).split("RESULT", 1)[1])
        # A running incident's scores, written by the batched UPDATE on PostgreSQL (jsonb).
        assert ids["running"] == [ids["alert"]]
        with psycopg.connect(database) as conn:
            peak, curve = conn.execute(
                f"SELECT peak_score, score_curve FROM alerts_alert WHERE id = {ids['alert']}"
            ).fetchone()
        assert peak == 0.97 and curve == [[2.0, 0.7], [2.1, 0.97]]
        row = wait_for(
            f"SELECT spectrogram FROM alerts_alert WHERE id = {ids['alert']}",
            database,
            lambda r: r and r[0],
        )
        log = (tmp_path / "celery.log").read_text(errors="replace")
        assert row, f"no picture after 60 s; worker log:\n{log}"
        png = tmp_path / "media" / row[0]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(png).size == (800, 360)

        state = wait_for(
            f"SELECT connection_state FROM devices_device WHERE id = {ids['stale']}",
            database,
            lambda r: r and r[0] == "offline",
            timeout=20,
        )
        assert state, "the offline sweep sent through the broker did not run"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker_log.close()
        redis.Redis.from_url(REDIS_URL).flushdb()
