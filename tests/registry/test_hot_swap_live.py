"""Promotion and rollback while a device streams real audio (embedded mode, a real daphne).

A second version is registered (the shipped artifact with another threshold: the same
features, another checksum). A device streams real street background with the reference
client; ``manage.py promote_model 2`` (another process, as an admin's click would be) makes the
stream's next windows be scored by version 2 within seconds — the ingest process counts the
windows each version scored (``/metrics``) — then a real scream gives an alert that records
version 2. A second stream meets ``manage.py rollback_model``: version 1 serves it again and its
scream's alert records version 1. Neither stream loses a sample or reconnects.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.devices.live import LiveServer
from tests.live.e2e import Dashboard, operator_session
from tests.live.test_end_to_end import (
    assert_nothing_reached_the_device,
    model_dir,
    start_gated_stream,
)

from .conftest import artifact_copy

pytestmark = pytest.mark.slow

SWITCH_WITHIN_S = 10.0  # the resolver reads the registry every second; daphne is busy here


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


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hot-swap")
    server = LiveServer(
        folder / "data",
        {
            "EYESCREAM_MODEL_DIR": str(model_dir()),
            "EYESCREAM_MODEL_STORE": str(folder / "store"),
            "OMP_NUM_THREADS": "1",
        },
    )
    server.migrate()
    candidate = artifact_copy(folder / "candidate", threshold=0.7)
    out = server.manage("register_model", str(candidate), "--description", "threshold 0.7")
    assert "registered version 2" in out, out
    devices = server.make_devices({"first": {}, "second": {}})
    session = operator_session(server)
    server.start(timeout=60)
    try:
        yield {"server": server, "devices": devices, "session": session}
    finally:
        server.stop()


async def stream_through_a_change(live, real_v1: Path, device: str, command: list[str], to: str):
    """Stream background with the active version, run ``command`` (promote or rollback), see
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
        changed = time.monotonic()
        await asyncio.to_thread(server.manage, *command)  # its Python start-up included
        after = await until(
            lambda: (c := windows_by_version(server)).get(to, 0.0) > start and c,
            SWITCH_WITHIN_S,
            f"windows scored by version {to}",
            server,
        )
        print(f"{command[0]}: version {to} scoring {time.monotonic() - changed:.1f} s after")
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


def test_promotion_and_rollback_while_devices_stream(live, real_v1):
    server = live["server"]
    asyncio.run(stream_through_a_change(live, real_v1, "first", ["promote_model", "2"], "2"))
    assert [n for n, _ in alert_models(server, live["devices"]["first"]["id"])] == [2]

    asyncio.run(stream_through_a_change(live, real_v1, "second", ["rollback_model"], "1"))
    rows = alert_models(server, live["devices"]["second"]["id"])
    assert [n for n, _ in rows] == [1] and rows[0][1], rows
    assert "Traceback" not in server.log(), server.log()[-4000:]
