"""The retrain button: an admin's POST creates a RetrainJob and a real Celery worker on the
Redis broker (not eager) runs it; the row shows the progress, then the registered candidate.
Scaled mode: PostgreSQL and Redis for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import psycopg
import pytest

from tests.devices.live import REPO, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.scaled]

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own for this test's broker
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"

# Reviewed alerts whose snippets are real recordings (dismissed non-screams, a confirmed
# scream), at one site; an admin to press the button.
CREATE = """
import json
from datetime import timedelta
from pathlib import Path
from django.contrib.auth.models import Group, User
from django.utils import timezone
from alerts.reviews import review_alert
from alerts.services import open_alert, update_alert
from detection.dataset import load_audio
from devices.models import Device, Location, Site
real = Path({real!r})
site = Site.objects.create(name="Depot", latitude=48.1, longitude=11.5)
mic = Device.objects.create(location=Location.objects.create(site=site, name="Gate"), name="mic")
op = User.objects.create_user("op", password="pw-for-tests-only")
op.groups.add(Group.objects.get(name="Operators"))
boss = User.objects.create_user("boss", password="pw-for-tests-only")
boss.groups.add(Group.objects.get(name="Admins"))
now = timezone.now()
for n, (rel, label) in enumerate(json.loads({clips!r})):
    audio = load_audio(real / rel, 16000)[: 16000 * 8]
    start = now - timedelta(minutes=10 - n)
    alert = open_alert(device_id=mic.pk, started_at=start + timedelta(seconds=1), peak_score=0.9,
                       mean_score=0.8, score_curve=[[1.0, 0.9]], model_version="v1",
                       snippet=audio, snippet_rate=16000, snippet_started_at=start)
    update_alert(alert.pk, ended_at=start + timedelta(seconds=4), peak_score=0.9, mean_score=0.8,
                 score_curve=[[1.0, 0.9]])
    review_alert(alert.pk, op, label)
print("RESULT" + json.dumps({{"alerts": n + 1}}))
"""
CLIPS = [
    ("audio/yt-scream-sfx/yt_scream_sfx_00.flac", "1"),
    ("audio/sharwin-sounds/cough_file5.flac", "0_2"),
    ("audio/donateacry/discomfort_64acb345_1430059012473.flac", "0_0"),
    ("audio/street-atmos/applause5.flac", "0_0"),
]
JOB = "SELECT status, progress, message, candidate_id, log FROM registry_retrainjob WHERE id = {id}"


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
    name = f"eyescream_retrain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_worker(server: LiveServer, log_path):
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the process)
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
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return worker


def stop(worker) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def test_the_retrain_button_queues_a_job_that_a_celery_worker_runs(database, tmp_path, real_v1):
    import redis

    server = LiveServer(
        tmp_path / "data",
        {
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": database,
            "EYESCREAM_RETRAIN_DIR": str(tmp_path / "runs"),
            "EYESCREAM_CACHE_DIR": str(tmp_path / "cache"),
            "EYESCREAM_ALERT_IMAGES": "0",
            "OMP_NUM_THREADS": "1",
        },
    )
    server.migrate()
    server.shell(CREATE.format(real=str(real_v1), clips=json.dumps(CLIPS)))
    worker = start_worker(server, tmp_path / "celery.log")
    server.start(timeout=60)
    try:
        session = server.login("boss", "pw-for-tests-only")
        page = f"{server.http_url}/feedback/retrain/"
        response = session.post(
            page,
            data={
                "epochs": "1",
                "holdout_days": "0",
                "max_files": "16",
                "max_eval_files": "10",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": page},
            allow_redirects=False,
        )
        assert response.status_code == 302 and response.headers["Location"] == "/models/"
        with psycopg.connect(database, autocommit=True) as conn:
            job_id, options, who = conn.execute(
                "SELECT j.id, j.options, u.username FROM registry_retrainjob j"
                " JOIN auth_user u ON u.id = j.requested_by_id"
            ).fetchone()
            assert who == "boss"
            assert options == {
                "epochs": 1,
                "holdout_days": 0.0,
                "max_files": 16,
                "max_eval_files": 10,
                "from_scratch": False,
            }
            seen, deadline = [], time.monotonic() + 600
            while time.monotonic() < deadline:
                row = conn.execute(JOB.format(id=job_id)).fetchone()
                if not seen or row[:3] != seen[-1]:
                    seen.append(row[:3])
                if row[0] in ("done", "failed"):
                    break
                time.sleep(0.3)
        worker_log = (tmp_path / "celery.log").read_text(errors="replace")
        status, progress, message, candidate, log = row
        assert status == "done", f"{message}\n{log}\n{worker_log[-3000:]}"
        assert "feedback.retrain" in worker_log  # the worker ran it, not the web process
        # Progress went up from 0 to 1 through the steps, the models page's messages.
        running = [p for s, p, _ in seen if s == "running"]
        assert running and 0 < max(running) < 1 and progress == 1.0
        assert any("training" in m for _, _, m in seen)
        assert candidate is not None and "registered" in message
        with psycopg.connect(database, autocommit=True) as conn:
            number, metrics, parent, source = conn.execute(
                "SELECT number, metrics, parent_id, source FROM registry_modelversion"
                f" WHERE id = {candidate}"
            ).fetchone()
        assert number == 2 and parent is not None and source == "retrained"
        assert metrics["fixed_pack"]["files"] == 10
        assert metrics["data"]["feedback_files"] == 4
        assert metrics["active_on_same_data"]["fixed_pack"]["files"] == 10
    finally:
        stop(worker)
        server.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()
