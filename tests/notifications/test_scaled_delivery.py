"""Scaled mode: a real Celery worker on the Redis broker fans an alert stored in PostgreSQL out
to a webhook, retries its 500 after the back-off (a countdown through the broker), and records
each attempt."""

import json
import signal
import subprocess
import time

import psycopg
import pytest

from notifications.signing import verify
from tests.alerts.test_scaled_celery import database, wait_for  # noqa: F401  (fixture)
from tests.devices.live import REPO, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.scaled]

REDIS_URL = "redis://127.0.0.1:6379/12"  # a database of its own for this test's broker
SECRET = "scaled-secret"

CREATE = """
import json
import numpy as np
from datetime import timedelta
from django.utils import timezone
from alerts.services import open_alert
from devices.models import Device, Location, Site
from notifications.models import Destination
site = Site.objects.create(name="Depot")
mic = Device.objects.create(location=Location.objects.create(site=site, name="Gate"), name="m")
Destination.objects.create(site=site, name="hub", kind="webhook", url="URL", secret="SECRET")
now = timezone.now()
audio = np.zeros(16000, dtype=np.float32)
alert = open_alert(device_id=mic.pk, started_at=now, peak_score=0.9, mean_score=0.7,
                   score_curve=[[0.5, 0.9]], model_version="scaled", snippet=audio,
                   snippet_rate=16000, snippet_started_at=now - timedelta(seconds=1))
print("RESULT" + json.dumps({"alert": alert.pk}))
"""


def test_a_celery_worker_delivers_with_retry_and_records_each_attempt(
    database,  # noqa: F811
    tmp_path,
    receiver,
):
    import redis

    hub = receiver(statuses=[500])
    server = LiveServer(
        tmp_path,
        extra_env={
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": database,
            "EYESCREAM_ALERT_IMAGES": "0",
            "EYESCREAM_DELIVERY_BACKOFF_S": "1",
            "EYESCREAM_PUBLIC_URL": "https://eyescream.example",
        },
    )
    server.migrate()
    # Tasks another run left on this broker (a benchmark's streams with no worker) would be
    # delivered to this database's subscription 1 too.
    redis.Redis.from_url(REDIS_URL).flushdb()
    worker_log = open(tmp_path / "celery.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "celery"),
            "-A",
            "eyescream_site",
            "worker",
            "--pool=threads",
            "--concurrency=2",
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
        code = CREATE.replace("URL", hub.url).replace("SECRET", SECRET)
        alert_id = json.loads(server.shell(code).split("RESULT", 1)[1])["alert"]
        query = "SELECT count(*) FROM notifications_delivery WHERE status = 'delivered'"
        done = wait_for(query, database, lambda r: r and r[0] >= 1, timeout=60)
        log = (tmp_path / "celery.log").read_text(errors="replace")
        assert done, f"no delivery after 60 s; worker log:\n{log}"
        with psycopg.connect(database) as conn:
            rows = conn.execute(
                "SELECT attempt, status, response_code, alert_id, event, created"
                " FROM notifications_delivery ORDER BY attempt"
            ).fetchall()
        assert [r[:5] for r in rows] == [
            (1, "failed", 500, alert_id, "alert.opened"),
            (2, "delivered", 200, alert_id, "alert.opened"),
        ]
        assert (rows[1][5] - rows[0][5]).total_seconds() >= 0.9  # the 1 s back-off
        assert len(hub.requests) == 2
        for headers, body in hub.requests:
            assert verify(SECRET, headers["x-eyescream-signature"], body)
        assert hub.messages()[0]["alert"]["event_id"] == f"alert-{alert_id}"
        time.sleep(0.5)
        assert len(hub.requests) == 2  # nothing more after the success
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker_log.close()
        redis.Redis.from_url(REDIS_URL).flushdb()
