"""The dashboard's snapshot and numbered changes through a real daphne on Redis.

A page asks for a snapshot on every connect and gets every device's state and the alerts that
need attention as of a sequence number; every broadcast after it carries the next number, from
whichever process sends it (here separate ``manage.py shell`` processes, as a Celery worker or a
second daphne would); changes made while a page was away are in its next snapshot; a number
taken and never sent is a gap the page can see.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.devices.live import LiveServer

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/5"  # a database of its own: no other test's "alerts" group

WORLD = """
import json
from django.contrib.auth.models import Group
from django.contrib.auth import get_user_model
from django.test import Client
from devices.models import Device, Location, Site
user = get_user_model().objects.create_user("sync-op", password="pw-for-tests-only")
user.groups.add(Group.objects.get(name="Operators"))
client = Client()
assert client.login(username="sync-op", password="pw-for-tests-only")
site = Site.objects.create(name="Depot", latitude=48.1, longitude=11.5)
place = Location.objects.create(site=site, name="Gate <b>2</b>", latitude=48.1, longitude=11.5)
device = Device.objects.create(location=place, name="gate-mic")
print("RESULT" + json.dumps({"session": client.cookies["sessionid"].value, "device": device.pk}))
"""

OPEN_ALERT = """
import json, numpy as np
from datetime import timedelta
from django.utils import timezone
from alerts.services import open_alert
now = timezone.now()
alert = open_alert(device_id={device}, started_at=now - timedelta(seconds=1), peak_score=0.9,
    mean_score=0.8, score_curve=[[1.0, 0.9]], model_version="sync-test",
    snippet=np.zeros(16000, dtype=np.float32), snippet_rate=16000,
    snippet_started_at=now - timedelta(seconds=2))
print("RESULT" + json.dumps(alert.pk))
"""


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False
    return True


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (the dashboard test needs it)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    server = LiveServer(tmp_path_factory.mktemp("sync"), extra_env={"REDIS_URL": REDIS_URL})
    server.migrate()
    server.world = json.loads(server.shell(WORLD).split("RESULT", 1)[1])
    server.start()
    yield server
    server.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


def result(out: str):
    return json.loads(out.split("RESULT", 1)[1])


async def next_message(ws, kind: str, timeout: float = 20.0) -> dict:
    """The next message of type ``kind`` (pongs and others before it are skipped)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == kind:
            return message


def connect(live):
    return websockets.connect(
        f"ws://127.0.0.1:{live.port}/ws/alerts/",
        additional_headers={"Cookie": f"sessionid={live.world['session']}"},
    )


async def in_thread(function, *args):
    return await asyncio.to_thread(function, *args)


def test_snapshot_then_numbered_changes_and_what_changed_while_away(live):
    device = live.world["device"]

    async def first_visit():
        async with connect(live) as ws:
            await ws.send(json.dumps({"type": "sync", "since_id": 0, "known": []}))
            snap = await next_message(ws, "snapshot")
            opened = result(await in_thread(live.shell, OPEN_ALERT.format(device=device)))
            created = await next_message(ws, "alert.created")
            # A device's row saved anywhere (here: disabled by an admin) reaches the page.
            await in_thread(
                live.shell,
                f"from devices.models import Device\n"
                f"d = Device.objects.get(pk={device}); d.enabled = False; d.save()",
            )
            disabled = await next_message(ws, "device.updated")
            return snap, opened, created, disabled

    snap, opened, created, disabled = asyncio.run(first_visit())
    assert [d["id"] for d in snap["devices"]] == [device]
    assert snap["devices"][0]["state"] == "offline" and snap["devices"][0]["enabled"] is True
    assert snap["devices"][0]["location"] == "Gate <b>2</b>"  # the text as typed; pages escape it
    assert snap["alerts"] == [] and snap["new_count"] == 0
    assert created["alert"]["id"] == opened and created["seq"] == snap["seq"] + 1
    assert disabled["device"]["id"] == device and disabled["device"]["enabled"] is False
    assert disabled["device"]["new_alerts"] == [opened]
    assert disabled["seq"] == created["seq"] + 1

    # While no page is connected: the alert is confirmed, the device enabled and online.
    live.shell(f"""
from django.contrib.auth import get_user_model
from alerts.reviews import review_alert
from devices.models import Device
review_alert({opened}, get_user_model().objects.get(username="sync-op"), "1", "heard it")
Device.objects.filter(pk={device}).update(enabled=True, connection_state=Device.ONLINE)
""")
    newer = result(live.shell(OPEN_ALERT.format(device=device)))

    async def second_visit():
        async with connect(live) as ws:
            await ws.send(json.dumps({"type": "sync", "since_id": opened, "known": [opened, 999]}))
            return await next_message(ws, "snapshot")

    snap2 = asyncio.run(second_visit())
    alerts = {a["id"]: a for a in snap2["alerts"]}
    assert alerts[opened]["status"] == "confirmed"
    assert alerts[opened]["review"]["user"] == "sync-op"
    assert alerts[opened]["review"]["note"] == "heard it"
    assert alerts[newer]["status"] == "new"
    assert snap2["removed"] == [999]
    assert snap2["new_count"] == 1
    [state] = snap2["devices"]
    assert (state["state"], state["enabled"], state["new_alerts"]) == ("online", True, [newer])
    assert snap2["seq"] >= disabled["seq"] + 2  # the review and the new alert were numbered


def test_a_number_taken_and_never_sent_shows_as_a_gap(live):
    device = live.world["device"]

    async def scenario():
        async with connect(live) as ws:
            await ws.send(json.dumps({"type": "sync"}))
            snap = await next_message(ws, "snapshot")
            # A broadcast lost on its way (here: its number taken, the message never sent).
            await in_thread(
                live.shell,
                "from asgiref.sync import async_to_sync\n"
                "from channels.layers import get_channel_layer\n"
                "from alerts.sequence import take\n"
                "async_to_sync(take)(get_channel_layer(), 'alerts', 1)",
            )
            await in_thread(live.shell, OPEN_ALERT.format(device=device))
            return snap, await next_message(ws, "alert.created")

    snap, created = asyncio.run(scenario())
    assert created["seq"] == snap["seq"] + 2


def test_a_bad_sync_request_is_answered_with_a_snapshot_of_defaults(live):
    async def scenario():
        async with connect(live) as ws:
            await ws.send(json.dumps({"type": "sync", "since_id": "x", "known": [True, "1", 2]}))
            return await next_message(ws, "snapshot")

    snap = asyncio.run(scenario())
    assert snap["removed"] == [2] or 2 in [a["id"] for a in snap["alerts"]]
    assert isinstance(snap["seq"], int)
