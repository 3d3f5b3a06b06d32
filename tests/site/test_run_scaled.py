"""``deploy/run-scaled.sh`` (``make run-scaled``) brings up the Procfile topology with real
processes on PostgreSQL and Redis: two daphne, one scoring worker, a Celery worker and beat.

A scream streamed to the first daphne becomes an alert on a dashboard of the second, an operator
confirms it; ``/metrics`` on the second daphne shows the counters of every process of the host
(multiprocess mode) moving; the scoring worker killed with SIGKILL in the middle of a stream
loses none of its audio, ``/readyz`` says 503 with the reason and the dashboard shows its
banner; once the Procfile has started the worker again,
screams streamed to both daphne at once are one alert each; SIGINT (Ctrl-C) stops every process.
The JSON-lines log of the whole run holds the device, site and alert ids and never a token, a
password or audio.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.devices.live import REPO, LiveServer, free_port
from tests.live.e2e import Dashboard, alert_rows, postgres_database, stream_file
from tests.live.workers import redis_url

pytestmark = [pytest.mark.slow, pytest.mark.scaled]

SCREAM = "audio/screamdet-main/femaleScream-004.flac"
QUIET = "audio/speech-tr/file11.flac"  # no alert (tests/live/test_end_to_end.py)
PASSWORD = "operator-pass-5d1f0e"
METRICS_TOKEN = "metrics-token-7c2a91"
SECRET_KEY = secrets.token_urlsafe(50)
TOKEN_KEY = secrets.token_urlsafe(50)


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def two_free_ports() -> int:
    """A port whose next one is free too (honcho gives web.1 $PORT, web.2 $PORT + 1)."""
    for _ in range(50):
        base = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two free ports in a row")


def is_scorer(command: str) -> bool:
    """The scoring worker's python, not the Procfile's shell loop around it."""
    return command.split(" ", 1)[0].endswith(("python", "python3")) and (
        "manage.py runworker detection-score" in command
    )


def readyz(port: int) -> tuple[int, dict]:
    response = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    return response.status_code, response.json()


def wait_for(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except requests.RequestException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture
def topology(tmp_path, real_v1):
    url = redis_url()
    base = two_free_ports()
    with postgres_database(f"eyescream_scaled_{os.getpid()}") as database_url:
        env = {
            **os.environ,
            "REDIS_URL": url,
            "DATABASE_URL": database_url,
            "EYESCREAM_DATA_DIR": str(tmp_path / "data"),
            "PORT": str(base),
            "WEB": "2",
            "SCORERS": "1",
            "CELERY_CONCURRENCY": "1",
            "SCORER_RESTART_S": "30",
            "EYESCREAM_HEARTBEAT_INTERVAL_S": "1",
            "EYESCREAM_LOG_FORMAT": "json",
            "EYESCREAM_METRICS_TOKEN": METRICS_TOKEN,
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "EYESCREAM_DEVICE_TOKEN_KEY": TOKEN_KEY,
            "OMP_NUM_THREADS": "1",
        }
        log_path = tmp_path / "honcho.log"
        with open(log_path, "wb") as log:
            honcho = subprocess.Popen(
                [str(REPO / "deploy" / "run-scaled.sh")],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started: set[int] = set()
        try:
            yield {
                "process": honcho,
                "env": env,
                "ports": (base, base + 1),
                "log": log_path,
                "started": started,
            }
        finally:
            # honcho starts each process in a session of its own: stop them one by one.
            started |= descendants(honcho.pid) if honcho.poll() is None else set()
            if honcho.poll() is None:
                honcho.send_signal(signal.SIGINT)
                try:
                    honcho.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    honcho.kill()
                    honcho.wait()
            for pid in started:
                if alive(pid) and (REPO.name in cmdline(pid) or ".venv" in cmdline(pid)):
                    os.kill(pid, signal.SIGKILL)


def test_run_scaled_topology_health_metrics_logs(topology, real_v1):
    honcho, env, (web1, web2), log_path = (topology[k] for k in ("process", "env", "ports", "log"))

    def log_text() -> str:
        return log_path.read_text(errors="replace")

    last: dict = {}

    def up() -> bool:
        if honcho.poll() is not None:
            raise AssertionError(f"run-scaled exited:\n{log_text()[-4000:]}")
        answers = [readyz(port) for port in (web1, web2)]
        last["answers"] = answers
        return all(status == 200 for status, _ in answers)

    wait_for(up, 240, f"/readyz 200 on both daphne ({last})")
    pids = descendants(honcho.pid)
    topology["started"].update(pids)
    commands = {pid: cmdline(pid) for pid in pids}
    assert sum("daphne" in c for c in commands.values()) == 2, commands
    scorers = [p for p, c in commands.items() if is_scorer(c)]
    assert len(scorers) == 1, commands
    assert any("celery" in c and " worker" in c for c in commands.values()), commands
    assert any("celery" in c and " beat" in c for c in commands.values()), commands

    admin = LiveServer(
        Path(env["EYESCREAM_DATA_DIR"]), {k: env[k] for k in ("REDIS_URL", "DATABASE_URL")}
    )
    admin.env.update(
        {
            k: env[k]
            for k in ("DJANGO_SECRET_KEY", "EYESCREAM_DEVICE_TOKEN_KEY", "EYESCREAM_LOG_FORMAT")
        }
    )
    devices = admin.make_devices({"gate-mic": {}, "yard-mic": {}})
    device_id, token = devices["gate-mic"]["id"], devices["gate-mic"]["token"]
    yard_id, yard_token = devices["yard-mic"]["id"], devices["yard-mic"]["token"]
    admin.make_user("operator", PASSWORD)
    admin.port = web2
    operator = admin.login("operator", PASSWORD)
    admin.port = web1
    # A daphne starts its alert writers with its first scored stream (seconds on a busy host);
    # a quiet stream first, as a running deployment has had one.
    asyncio.run(stream_file(admin, yard_token, real_v1 / QUIET, 4.0))
    wait_for(lambda: "alert writer 'open' ready" in log_text(), 120, "web.1's alert writers")

    def admin_on(port: int) -> LiveServer:
        other = LiveServer(Path(env["EYESCREAM_DATA_DIR"]), {})
        other.port = port
        return other

    async def scream() -> dict:
        async with Dashboard(admin_on(web2), operator.cookies["sessionid"]) as dashboard:
            await stream_file(admin, token, real_v1 / SCREAM, 4.0)

            # alert.created, or (when the stream's end outran the opening on a busy host, and
            # daphne cancelled the connection's tasks) the picture's alert.updated.
            def seen():
                return dashboard.alerts("alert.created", device_id) or dashboard.alerts(
                    "alert.updated", device_id
                )

            await dashboard.wait_for(seen, 90, "the alert")
            return seen()[0][1]

    alert = asyncio.run(scream())
    review = operator.post(
        f"http://127.0.0.1:{web2}/api/alerts/{alert['id']}/review/",
        json={"label": "1", "note": "heard it"},
        headers={
            "X-CSRFToken": operator.cookies["csrftoken"],
            "Referer": f"http://127.0.0.1:{web2}/",
        },
        timeout=30,
    )
    assert review.status_code == 200, review.text

    # /metrics on the other daphne: every process of the host, counted.
    assert requests.get(f"http://127.0.0.1:{web2}/metrics", timeout=30).status_code == 403
    scraped = requests.get(
        f"http://127.0.0.1:{web2}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=30,
    )
    assert scraped.status_code == 200
    text = scraped.text
    assert metric(text, "eyescream_frames_accepted_total") > 10
    assert metric(text, "eyescream_streams_started_total") == 2  # the quiet one and the scream
    assert metric(text, "eyescream_windows_scored_total") > 10
    assert metric(text, "eyescream_scoring_batch_windows_count") > 0
    assert metric(text, "eyescream_scoring_forward_seconds_count") > 0
    assert metric(text, "eyescream_scoring_round_trip_seconds_count") > 0
    assert metric(text, "eyescream_detection_latency_seconds_count") <= 1
    assert metric(text, 'eyescream_alerts{status="confirmed"}') == 1
    assert metric(text, "eyescream_scoring_workers_alive") == 1
    assert metric(text, 'eyescream_channel_queue_depth{channel="detection-score"}') >= 0
    assert (
        metric(
            text, 'eyescream_celery_tasks_succeeded_total{task="alerts.tasks.render_alert_image"}'
        )
        >= 1
    )

    # The scoring worker killed in the middle of a stream: the stream goes on, every sample
    # stored; /readyz says so, and so does the dashboard's banner.
    async def kill_mid_stream() -> dict:
        streaming = asyncio.create_task(
            stream_file(admin_on(web2), yard_token, real_v1 / QUIET, 1.0)
        )
        await asyncio.sleep(2.0)
        os.kill(scorers[0], signal.SIGKILL)
        return await streaming

    summary = asyncio.run(kill_mid_stream())
    assert summary["dropped_samples"] == 0 and summary["connections"] == 1, summary
    assert summary["acked_samples"] == summary["captured_samples"] > 0, summary

    def scoring_down():
        status, body = readyz(web1)
        return status == 503 and body["checks"]["scoring"]["ok"] is False and body

    body = wait_for(scoring_down, 15, "/readyz 503 after the scoring worker died")
    assert any(r.startswith("scoring: no scoring worker heartbeat") for r in body["reasons"])
    assert body["checks"]["scoring"]["fallback"] is True
    assert body["checks"]["database"]["ok"] and body["checks"]["celery"]["ok"]
    banner_shown(web1, operator.cookies["sessionid"])

    # The Procfile starts the worker again; a scream after that is one alert again, on either
    # daphne (the yard's device streams to the second one).
    wait_for(lambda: readyz(web1)[0] == 200, 120, "/readyz 200 with the restarted worker")

    async def two_screams():
        yard = admin_on(web2)
        await asyncio.gather(
            stream_file(admin, token, real_v1 / SCREAM, 4.0),
            stream_file(yard, yard_token, real_v1 / SCREAM, 4.0),
        )

    asyncio.run(two_screams())
    ids = [device_id, yard_id]
    rows = wait_for(lambda: len(rows := alert_rows(admin, ids)) == 3 and rows, 90, "the alerts")
    time.sleep(3)
    rows = alert_rows(admin, ids)  # exactly one per scream, none more
    assert sorted(row["device"] for row in rows) == sorted([device_id, device_id, yard_id]), rows

    # Ctrl-C stops every process.
    honcho.send_signal(signal.SIGINT)
    honcho.wait(timeout=60)
    wait_for(lambda: not any(alive(p) for p in pids), 30, "every process to stop")

    logs = log_text()
    secrets_of_the_run = (token, yard_token, PASSWORD, METRICS_TOKEN, SECRET_KEY, TOKEN_KEY)
    for secret in (*secrets_of_the_run, operator.cookies["sessionid"]):
        assert secret not in logs
    assert "esd_" not in logs
    assert not re.search(r"[A-Za-z0-9+/=_-]{200,}", logs), "a long encoded run (audio?) in the log"
    records = [json.loads(m) for m in re.findall(r"\| (\{.*\})$", logs, flags=re.M)]
    assert any(r.get("device_id") == device_id and "site_id" in r for r in records), records[:20]
    assert any(
        r.get("alert_id") == alert["id"] and r.get("device_id") == device_id for r in records
    )
    reviewed = [
        r for r in records if r.get("alert_id") == alert["id"] and "reviewed" in r["message"]
    ]
    assert reviewed, records[-20:]
    assert any(r["logger"].startswith("celery") and "succeeded" in r["message"] for r in records)


def banner_shown(port: int, session: str) -> None:
    from tests.dashboard.test_browser_live import new_browser

    browser = new_browser()
    try:
        browser.get(f"http://127.0.0.1:{port}/healthz")
        browser.add_cookie({"name": "sessionid", "value": session, "path": "/"})
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(
            lambda: browser.execute_script(
                "const b = document.getElementById('scoring-banner');"
                "return b && !b.hidden && b.textContent.includes('Scoring workers are down')"
                " && b.textContent.includes('the web servers score the audio themselves');"
            ),
            30,
            "the scoring-down banner",
        )
    finally:
        browser.quit()
