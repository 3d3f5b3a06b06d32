"""The dashboard WebSocket through a real daphne: anonymous users and users without the
operator role are refused, a logged-in operator receives ``alert.created`` for an alert another
process stores, and can fetch its audio.

daphne runs with the SQLite file of its data folder and the Redis channel layer (the alert is
created by a separate ``manage.py shell`` process, as a scoring worker or second daphne would).
"""

import asyncio
import io
import json
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
import soundfile
import websockets
from websockets.exceptions import InvalidStatus

from tests.devices.live import PYTHON, REPO, LiveServer

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own: no other test's "alerts" group

LOGIN = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
user = get_user_model().objects.create_user("operator", password="pw-for-tests-only")
user.groups.add(Group.objects.get(name="Operators"))
get_user_model().objects.create_user("visitor", password="pw-for-tests-only")
visitor = Client()
assert visitor.login(username="visitor", password="pw-for-tests-only")
print("VISITOR" + visitor.cookies["sessionid"].value)
client = Client()
assert client.login(username="operator", password="pw-for-tests-only")
print("RESULT" + client.cookies["sessionid"].value)
"""

OPEN_ALERT = """
import json, numpy as np, soundfile
from datetime import timedelta
from django.utils import timezone
from alerts.services import open_alert
audio, rate = soundfile.read({path!r}, dtype="float32")
now = timezone.now()
alert = open_alert(device_id={device_id}, started_at=now - timedelta(seconds=1),
    peak_score=0.95, mean_score=0.8, score_curve=[[2.0, 0.7], [2.1, 0.95]],
    model_version="live-test", snippet=audio, snippet_rate=rate,
    snippet_started_at=now - timedelta(seconds=3))
print("RESULT" + json.dumps({{"id": alert.pk}}))
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

    server = LiveServer(tmp_path_factory.mktemp("dashboard"), extra_env={"REDIS_URL": REDIS_URL})
    server.migrate()
    server.start()
    yield server
    server.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


async def refused(url: str, headers: dict | None = None) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url, additional_headers=headers or {}):
            pass
    return info.value.response.status_code


def test_anonymous_and_bad_sessions_are_refused(live):
    url = f"ws://127.0.0.1:{live.port}/ws/alerts/"
    assert asyncio.run(refused(url)) == 403
    assert asyncio.run(refused(url, {"Cookie": "sessionid=not-a-session"})) == 403


def test_logged_in_dashboard_receives_the_new_alert_and_can_play_it(live, tmp_path):
    out = live.shell(LOGIN)
    session = out.split("RESULT", 1)[1].strip()
    visitor = out.split("VISITOR", 1)[1].split()[0]
    # Logged in but not an operator: refused too.
    url = f"ws://127.0.0.1:{live.port}/ws/alerts/"
    assert asyncio.run(refused(url, {"Cookie": f"sessionid={visitor}"})) == 403
    device = live.make_devices({"dash-mic": {}})["dash-mic"]
    rate = 16_000
    t = np.arange(3 * rate) / rate
    scream_like = (0.4 * np.sin(2 * np.pi * (900 + 300 * np.sin(8 * t)) * t)).astype(np.float32)
    source = tmp_path / "snippet.wav"
    soundfile.write(source, scream_like, rate)

    async def scenario():
        async with websockets.connect(
            url, additional_headers={"Cookie": f"sessionid={session}"}
        ) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}
            creator = await asyncio.create_subprocess_exec(
                *live_shell_args(live, OPEN_ALERT.format(path=str(source), device_id=device["id"])),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=live.env,
                cwd=str(REPO),
            )
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            out, err = await creator.communicate()
            assert creator.returncode == 0, err.decode()
            return message, json.loads(out.decode().split("RESULT", 1)[1])

    message, created = asyncio.run(scenario())
    assert message["type"] == "alert.created"
    alert = message["alert"]
    assert alert["id"] == created["id"]
    assert alert["device"] == {"id": device["id"], "name": "dash-mic"}
    assert alert["site"] == "Test site" and alert["status"] == "new"

    # The snippet is stored before the broadcast: it is there to play, for logged-in users only.
    request = urllib.request.Request(
        live.http_url + alert["snippet_url"], headers={"Cookie": f"sessionid={session}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        audio, got_rate = soundfile.read(io.BytesIO(response.read()), dtype="float32")
    assert got_rate == rate and audio.shape[0] == scream_like.shape[0]
    assert np.max(np.abs(audio - scream_like)) < 1e-3
    anonymous = urllib.request.Request(live.http_url + alert["snippet_url"])
    no_redirect = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        no_redirect.open(anonymous, timeout=10)
    assert info.value.code == 302 and "/accounts/login/" in info.value.headers["Location"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def live_shell_args(live, code: str) -> list[str]:
    return [str(PYTHON), str(REPO / "manage.py"), "shell", "--no-imports", "-c", code]


def test_a_burst_of_broadcasts_reaches_the_dashboard_in_order_with_each_alerts_newest(live):
    """Another process sends 40 new alerts and 200 updates to the group at once (two Redis
    round trips); the dashboard forwards what waited together in one turn, every new alert in
    order and, of each alert's updates, at least its newest, after its creation."""
    from eyescream_site.channel_layer import BulkRedisChannelLayer
    from tests.live.workers import layer_hosts

    out = live.shell(LOGIN.replace('"operator"', '"burst-operator"').replace('"visitor"', '"v2"'))
    session = out.split("RESULT", 1)[1].strip()
    url = f"ws://127.0.0.1:{live.port}/ws/alerts/"
    messages = [{"type": "alert.created", "alert": {"id": i, "n": 0}} for i in range(40)]
    messages += [
        {"type": "alert.updated", "alert": {"id": i % 40, "n": 1 + i // 40}} for i in range(200)
    ]

    async def scenario():
        layer = BulkRedisChannelLayer(hosts=layer_hosts(REDIS_URL), capacity=5000, expiry=10)
        try:
            async with websockets.connect(
                url, additional_headers={"Cookie": f"sessionid={session}"}
            ) as ws:
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}
                await layer.group_send_many("alerts", messages)
                got = []
                newest = {}
                while len(newest) < 40 or any(n < 5 for n in newest.values()):
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                    if got[-1]["type"] == "alert.updated":
                        newest[got[-1]["alert"]["id"]] = got[-1]["alert"]["n"]
                return got
        finally:
            await layer.close_pools()

    got = asyncio.run(scenario())
    created = [m["alert"]["id"] for m in got if m["type"] == "alert.created"]
    assert created == list(range(40))
    for alert_id in range(40):
        seen = [(i, m) for i, m in enumerate(got) if m["alert"]["id"] == alert_id]
        assert seen[0][1]["type"] == "alert.created"
        updates = [m["alert"]["n"] for _, m in seen[1:]]
        assert updates == sorted(updates) and updates[-1] == 5
    assert len(got) <= len(messages)
