"""Revoking, rotating or disabling closes a live stream within 1 s (real daphne, both modes)."""

from __future__ import annotations

import asyncio
import os
import re
import time

import pytest

from devices.protocol import CODES

from .live import LiveServer
from .wsutil import expect_error, open_stream, pcm_frame


async def stream_until_closed(url: str, token: str) -> tuple[dict, int, float]:
    """Stream in real time until the server closes; return (error, code, close time)."""
    ws, _ = await open_stream(url, token)

    async def sender():
        sent = 0
        try:
            while True:
                await ws.send(pcm_frame(offset=sent))
                sent += 3200
                await asyncio.sleep(0.2)
        except Exception:
            return

    task = asyncio.create_task(sender())
    error, code = await expect_error(ws, timeout=30)
    closed_at = time.time()
    task.cancel()
    return error, code, closed_at


def run_while_streaming(url: str, token: str, action) -> tuple[dict, int, float, float]:
    """Start a stream, run ``action()`` (returns when the change is committed) in a thread."""

    async def scenario():
        streaming = asyncio.create_task(stream_until_closed(url, token))
        await asyncio.sleep(1.0)
        assert not streaming.done(), streaming.result()
        committed_at = await asyncio.to_thread(action)
        error, code, closed_at = await streaming
        return error, code, committed_at, closed_at

    return asyncio.run(scenario())


def shell_change(live: LiveServer, device_id: int, statement: str):
    """Change the device in ANOTHER process (no shared in-memory channel layer)."""
    code = (
        "import time\nfrom devices.models import Device\nfrom devices import services\n"
        f"d = Device.objects.get(pk={device_id})\n{statement}\nprint('AT', time.time())\n"
    )

    def action() -> float:
        return float(live.shell(code).split("AT", 1)[1])

    return action


@pytest.fixture(scope="module")
def admin_session(live):
    live.shell(
        "from django.contrib.auth.models import User\n"
        "User.objects.create_superuser('admin', 'a@example.org', 'pw-for-tests-only')"
    )
    return live.login("admin", "pw-for-tests-only", path="/admin/login/")


def admin_action(live, session, action: str, device_id: int):
    def run() -> tuple[float, str]:
        url = f"{live.http_url}/admin/devices/device/"
        response = session.post(
            url,
            data={
                "action": action,
                "_selected_action": [str(device_id)],
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": url},
        )
        assert response.status_code == 200, response.text[:500]
        return time.time(), response.text

    return run


def test_admin_revoke_closes_the_live_stream_within_1s(live, admin_session):
    device = live.make_devices({"revoke-me": {}})["revoke-me"]
    result = {}

    def action():
        result["at"], result["page"] = admin_action(
            live, admin_session, "revoke_tokens", device["id"]
        )()
        return result["at"]

    error, code, committed, closed = run_while_streaming(live.ws_url, device["token"], action)
    assert (error["error"], code) == ("token_revoked", CODES["token_revoked"])
    assert closed - committed < 1.0
    assert live.device_row(device["id"], offline_within_s=10)["connection_state"] == "offline"


def test_admin_rotate_shows_a_new_token_once_and_the_old_one_stops(live, admin_session):
    device = live.make_devices({"rotate-me": {}})["rotate-me"]
    result = {}

    def action():
        result["at"], result["page"] = admin_action(
            live, admin_session, "rotate_tokens", device["id"]
        )()
        return result["at"]

    error, code, committed, closed = run_while_streaming(live.ws_url, device["token"], action)
    assert (error["error"], code) == ("token_revoked", CODES["token_revoked"])
    assert closed - committed < 1.0
    new_token = re.search(r'class="device-token">(esd_[\w-]+)<', result["page"]).group(1)
    assert new_token != device["token"]

    async def reconnect():
        ws, ready = await open_stream(live.ws_url, new_token)
        await ws.close()
        from .wsutil import connect, hello

        old = await connect(live.ws_url)
        await old.send(hello(device["token"]))
        return ready, await expect_error(old)

    ready, (error, code) = asyncio.run(reconnect())
    assert ready["device"]["id"] == device["id"]
    assert code == CODES["bad_token"]
    # Shown once: the device page in the admin never shows it again.
    change = admin_session.get(f"{live.http_url}/admin/devices/device/{device['id']}/change/")
    assert new_token not in change.text


@pytest.mark.parametrize(
    "statement, error",
    [
        ("services.revoke_token(d)", "token_revoked"),
        ("d.enabled = False; d.save()", "device_disabled"),
        ("Device.objects.filter(pk=d.pk).update(enabled=False)", "device_disabled"),
    ],
)
def test_change_from_another_process_closes_within_1s(live, statement, error):
    device = live.make_devices({f"other-{error}-{len(statement)}": {}}).popitem()[1]
    action = shell_change(live, device["id"], statement)
    err, code, committed, closed = run_while_streaming(live.ws_url, device["token"], action)
    assert (err["error"], code) == (error, CODES[error])
    assert closed - committed < 1.0


def test_tokens_never_reach_the_server_log(live):
    log = live.log()
    tokens = re.findall(r"esd_[\w-]{43}", log)
    assert tokens == []


# --------------------------------------------------------------------------- scaled mode


def scaled_services_available() -> str | None:
    try:
        import psycopg
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
    except Exception as exc:
        return f"scaled-mode services not reachable: {exc}"
    return None


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    reason = scaled_services_available()
    if reason:
        if os.environ.get("EYESCREAM_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    import psycopg

    name = f"eyescream_test_devices_{os.getpid()}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    server = LiveServer(
        tmp_path_factory.mktemp("scaled"),
        {
            "REDIS_URL": "redis://127.0.0.1:6379/7",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        },
    )
    try:
        server.migrate()
        server.start()
        yield server
    finally:
        server.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.scaled
def test_scaled_mode_revoke_reaches_the_stream_over_redis_within_1s(scaled):
    device = scaled.make_devices({"scaled-mic": {}})["scaled-mic"]
    action = shell_change(scaled, device["id"], "services.revoke_token(d)")
    err, code, committed, closed = run_while_streaming(scaled.ws_url, device["token"], action)
    assert (err["error"], code) == ("token_revoked", CODES["token_revoked"])
    assert closed - committed < 1.0
    row = scaled.device_row(device["id"], offline_within_s=10)
    assert row["samples_received"] > 0 and row["connection_state"] == "offline"
