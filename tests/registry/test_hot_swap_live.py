"""Promotion and rollback while a device streams real audio (embedded mode, a real daphne).

A second version is registered (the shipped artifact with another threshold: the same
features, another checksum). A device streams real street background with the reference
client; an admin's ``POST /api/models/2/promote/`` makes the stream's next windows be scored
by version 2 within seconds — the ingest process counts the windows each version scored
(``/metrics``) — then a real scream gives an alert that records version 2. A second stream
meets ``POST /api/models/rollback/``: version 1 serves it again and its scream's alert records
version 1. Neither stream loses a sample or reconnects. The same in
scaled mode: daphne, a real ``runworker detection-score``, Redis and PostgreSQL; the worker
loads version 2 from the model store and serves the requests that name it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.dashboard.conftest import PASSWORD
from tests.devices.live import LiveServer
from tests.live.e2e import Dashboard, operator_session, postgres_database
from tests.live.test_end_to_end import (
    assert_nothing_reached_the_device,
    model_dir,
    start_gated_stream,
)
from tests.live.workers import ScoringWorker, redis_url, worker_answers

from .conftest import artifact_copy

pytestmark = pytest.mark.slow

# The resolver reads the registry every second (scaled mode: 2 s more for the workers to load
# the version); the host is busy.
SWITCH_WITHIN_S = 10.0


def windows_by_version(server: LiveServer) -> dict[str, float]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.http_url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    pattern = r'^eyescream_windows_by_model_version_total\{version="(\d*)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


async def until(condition, timeout: float, what: str, server: LiveServer):
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen in {timeout:g} s:\n{server.log()[-3000:]}")
        await asyncio.sleep(0.3)


def alert_models(server: LiveServer, device_id: int) -> list[tuple[int | None, str]]:
    code = (
        "import json\nfrom alerts.models import Alert\nprint('RESULT' + json.dumps(list("
        f"Alert.objects.filter(device_id={device_id}).order_by('id')"
        ".values_list('model_number', 'model_version'))))"
    )
    return [tuple(r) for r in json.loads(server.shell(code).split("RESULT", 1)[1])]


def start_server(folder: Path, extra_env: dict | None = None) -> dict:
    server = LiveServer(
        folder / "data",
        {
            "EYESCREAM_MODEL_DIR": str(model_dir()),
            "EYESCREAM_MODEL_STORE": str(folder / "store"),
            "OMP_NUM_THREADS": "1",
            **(extra_env or {}),
        },
    )
    server.migrate()
    candidate = artifact_copy(folder / "candidate", threshold=0.7)
    out = server.manage("register_model", str(candidate), "--description", "threshold 0.7")
    assert "registered version 2" in out, out
    devices = server.make_devices({"first": {}, "second": {}})
    session = operator_session(server)
    server.make_user("admin", PASSWORD, "Admins")
    return {"server": server, "devices": devices, "session": session}


def admin_post(live, path: str) -> dict:
    """POST to the API as the admin (session login, CSRF token), as the models page would."""
    server = live["server"]
    if "admin" not in live:
        live["admin"] = server.login("admin", PASSWORD)
    session = live["admin"]
    response = session.post(
        server.http_url + path,
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": server.http_url + "/"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("hot-swap"))
    live["server"].start(timeout=60)
    try:
        yield live
    finally:
        live["server"].stop()


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """daphne and one ``runworker detection-score`` on Redis and PostgreSQL."""
    folder = tmp_path_factory.mktemp("hot-swap-scaled")
    url = redis_url()
    with postgres_database(f"eyescream_swap_{os.getpid()}") as database_url:
        live = start_server(folder, {"REDIS_URL": url, "DATABASE_URL": database_url})
        server = live["server"]
        worker = ScoringWorker(server.env, folder / "worker.log")
        try:
            server.start(timeout=60)
            worker.start()
            asyncio.run(worker_answers(url, model_dir(), timeout=120))
            yield {**live, "worker": worker}
        finally:
            worker.stop()
            server.stop()
        import redis

        redis.Redis.from_url(url).flushdb()


async def stream_through_a_change(live, real_v1: Path, device: str, path: str, to: str):
    """Stream background with the active version, POST ``path`` (promote or rollback), see
    the windows go to version ``to`` and none to the old one any more, then the scream."""
    server = live["server"]
    device_id, token = live["devices"][device]["id"], live["devices"][device]["token"]
    go = asyncio.Event()
    async with Dashboard(server, live["session"]) as dashboard:
        task = start_gated_stream(server, token, real_v1, go, device)
        before = await until(
            lambda: (c := windows_by_version(server)) and sum(c.values()) > 0 and c,
            60,
            "the first scored windows",
            server,
        )
        start = before.get(to, 0.0)
        answer = await asyncio.to_thread(admin_post, live, path)
        assert answer["active"]["number"] == int(to), answer
        changed = time.monotonic()
        after = await until(
            lambda: (c := windows_by_version(server)).get(to, 0.0) > start and c,
            SWITCH_WITHIN_S,
            f"windows scored by version {to}",
            server,
        )
        print(f"{path}: version {to} scoring within {time.monotonic() - changed:.1f} s")
        await asyncio.sleep(2.0)  # more windows, all of them the new version's
        later = windows_by_version(server)
        old = [v for v in later if v != to]
        assert all(later[v] == after.get(v, 0.0) for v in old), (after, later)
        assert later[to] > after[to], (after, later)
        go.set()
        report = await asyncio.wait_for(task, 120)
        await dashboard.wait_for(
            lambda: dashboard.closing_update(device_id), 30, "the closing alert.updated"
        )
    assert_nothing_reached_the_device(report)  # one connection, every sample stored
    created = dashboard.alerts("alert.created", device_id)
    assert len(created) == 1, created
    assert created[0][1]["model_number"] == int(to), created
    return report


def promote_then_roll_back(live, real_v1) -> None:
    server = live["server"]
    asyncio.run(stream_through_a_change(live, real_v1, "first", "/api/models/2/promote/", "2"))
    assert [n for n, _ in alert_models(server, live["devices"]["first"]["id"])] == [2]

    asyncio.run(stream_through_a_change(live, real_v1, "second", "/api/models/rollback/", "1"))
    rows = alert_models(server, live["devices"]["second"]["id"])
    assert [n for n, _ in rows] == [1] and rows[0][1], rows
    assert "Traceback" not in server.log(), server.log()[-4000:]


def test_embedded_promotion_and_rollback_while_devices_stream(embedded, real_v1):
    promote_then_roll_back(embedded, real_v1)


@pytest.mark.scaled
def test_scaled_promotion_and_rollback_while_devices_stream(scaled, real_v1):
    promote_then_roll_back(scaled, real_v1)
    log = scaled["worker"].log()
    assert "store/v2" in log and "Traceback" not in log, log[-4000:]
