"""Live alerts written in a child process (``EYESCREAM_ALERT_WRITER = "process"``): committed
there with their snippet before daphne broadcasts them, and none lost or doubled when the
child dies. The child is a real spawned process on the test's own database file."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import get_channel_layer

from alerts import writer_process
from alerts.broadcasting import collected_broadcasts, send_to_group, start_broadcaster
from alerts.models import Alert
from alerts.writer_process import AlertWriter, WriterLost

from .conftest import alert_kwargs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def writers(settings, media):
    """``_alert_writes`` in process mode, with fresh writer processes closed afterwards."""
    from live import scoring_setup as live_scoring

    settings.EYESCREAM_ALERT_WRITER = "process"
    live_scoring._writer_processes.cache_clear()
    yield live_scoring
    for writer in live_scoring._writer_processes().values():
        writer.close()
    live_scoring._writer_processes.cache_clear()


def test_broadcasts_are_collected_inside_the_block_by_the_thread_that_opened_it():
    created, updated = {"type": "alert.created", "n": 1}, {"type": "alert.updated", "n": 2}
    others = []

    def other_thread():
        with collected_broadcasts() as messages:
            send_to_group("alerts", updated)
        others.append(messages)

    with collected_broadcasts() as messages:
        send_to_group("alerts", created)
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert messages == [("alerts", created)] and others == [[("alerts", updated)]]


def test_an_alert_opened_in_the_writer_process_is_stored_before_it_is_broadcast(
    writers, device, media, settings
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    open_alert, update_alert, write_running = writers._alert_writes()
    kwargs = alert_kwargs(device, seconds=3.0)

    async def main():
        name = await layer.new_channel()
        await layer.group_add("alerts", name)
        start_broadcaster(layer)
        alert_id = await open_alert(**kwargs)
        created = await asyncio.wait_for(layer.receive(name), 30)
        row = await asyncio.to_thread(lambda: Alert.objects.get(pk=alert_id))
        # The broadcast came after the child's commit: the row and its snippet are there.
        assert created["type"] == "alert.created" and created["alert"]["id"] == alert_id
        assert row.snippet.name and (media / row.snippet.name).stat().st_size > 1000
        assert row.device_id == device.pk and row.peak_score == pytest.approx(0.97)

        from alerts.services import RunningScores

        await write_running({alert_id: RunningScores(0.99, 0.9, [[2.0, 0.99]])})
        running = await asyncio.wait_for(layer.receive(name), 30)
        assert running["type"] == "alert.updated" and running["alert"]["peak_score"] == 0.99
        final = dict(kwargs, ended_at=kwargs["started_at"], snippet=kwargs["snippet"][:8000])
        for key in ("device_id", "started_at", "model_version"):
            final.pop(key)
        await update_alert(alert_id, **final)
        updated = await asyncio.wait_for(layer.receive(name), 30)
        assert updated["type"] == "alert.updated" and updated["alert"]["ended_at"]
        return alert_id

    alert_id = asyncio.run(main())
    writer_pids = {w.pid() for w in writers._writer_processes().values()}
    assert os.getpid() not in writer_pids and None not in writer_pids and len(writer_pids) == 2
    row = Alert.objects.get(pk=alert_id)
    assert row.ended_at is not None and len(row.score_curve) == 10  # the final update's
    assert row.peak_score == pytest.approx(0.97)
    assert Alert.objects.count() == 1
    assert len(list((media / "snippets").rglob("*.flac"))) == 1  # the replaced one removed


def test_an_alert_whose_stream_is_cancelled_while_the_writer_starts_is_still_broadcast(
    writers, device, media, settings
):
    """Daphne cancels a closed connection's consumer after its close timeout; a writer child
    still starting (seconds on a busy host) commits the alert after that. It must be shown."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    open_alert, _, _ = writers._alert_writes()

    async def main():
        name = await layer.new_channel()
        await layer.group_add("alerts", name)
        start_broadcaster(layer)
        stream = asyncio.ensure_future(open_alert(**alert_kwargs(device)))
        await asyncio.sleep(0.05)  # the child is still importing Django
        stream.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stream
        return await asyncio.wait_for(layer.receive(name), 60)

    created = asyncio.run(main())
    row = Alert.objects.get()
    assert created["type"] == "alert.created" and created["alert"]["id"] == row.pk
    assert row.snippet.name and (media / row.snippet.name).exists()


def test_a_killed_writer_loses_no_alert_and_a_new_one_takes_over(writers, device, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    open_alert, _, _ = writers._alert_writes()
    opener = writers._writer_processes()["open"]

    async def main():
        start_broadcaster(layer)
        first = await open_alert(**alert_kwargs(device))
        pid = opener.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # Written in a thread of this process instead; the next one in a new child.
        second = await open_alert(**alert_kwargs(device, started_at=_later(1)))
        third = await open_alert(**alert_kwargs(device, started_at=_later(2)))
        return first, second, third, pid

    first, second, third, dead = asyncio.run(main())
    assert len({first, second, third}) == 3
    assert Alert.objects.filter(device=device).count() == 3
    assert opener.restarts == 1 and opener.pid() not in (None, dead)


def test_a_write_in_flight_when_the_writer_dies_raises_writer_lost(writers, device):
    writer = AlertWriter("test")

    async def main():
        writer.start()
        pid = await asyncio.get_running_loop().run_in_executor(
            writer._executor(), writer_process._ready
        )
        waiting = asyncio.ensure_future(writer.run(time.sleep, 30))
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WriterLost):
            await asyncio.wait_for(waiting, 20)

    try:
        asyncio.run(main())
        assert writer.restarts == 1
    finally:
        writer.close()


def test_opening_again_after_a_lost_writer_does_not_double_the_alert(device, media):
    from alerts import services

    first = services.open_alert(**alert_kwargs(device))
    again = services.open_alert_once(**alert_kwargs(device))
    other = services.open_alert_once(**alert_kwargs(device, started_at=_later(5)))
    assert again.pk == first.pk and other.pk != first.pk
    assert Alert.objects.count() == 2


def _writer_setting(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.EYESCREAM_ALERT_WRITER)",
        ],
        env=clean | {"DJANGO_SETTINGS_MODULE": "eyescream_site.settings"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_writer_is_a_process_in_scaled_mode_and_a_thread_in_embedded_mode():
    scaled = {
        "REDIS_URL": "redis://127.0.0.1:6379/9",
        "DATABASE_URL": "postgres://x@h/db",
        "DJANGO_SECRET_KEY": "k" * 40 + "0123456789",
        "EYESCREAM_DEVICE_TOKEN_KEY": "t" * 40 + "0123456789",
    }
    assert _writer_setting(**scaled).stdout.split() == ["process"]
    assert _writer_setting().stdout.split() == ["thread"]
    assert _writer_setting(**scaled, EYESCREAM_ALERT_WRITER="thread").stdout.split() == ["thread"]
    bad = _writer_setting(EYESCREAM_ALERT_WRITER="processes")
    assert bad.returncode != 0
    assert 'EYESCREAM_ALERT_WRITER must be "thread" or "process"' in bad.stderr


def _later(seconds: float) -> datetime:
    """Another incident's start on the same device (``alert_kwargs`` starts at 12:00:02)."""
    return datetime(2025, 5, 1, 12, 0, 2, tzinfo=UTC) + timedelta(seconds=seconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child stays a zombie until its parent reaps it: not alive either.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


KILLED_PARENT = """
import os, signal, sys
import django
django.setup()
from alerts import writer_process
writer = writer_process.AlertWriter("orphan-test")
print(writer._executor().submit(writer_process._ready).result(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_stops_when_its_daphne_is_killed(tmp_path):
    """SIGKILL leaves no orphan: the executor cannot tell its child, the child notices."""
    parent = subprocess.Popen(
        [sys.executable, "-c", KILLED_PARENT],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "eyescream_site.settings",
            "EYESCREAM_DATA_DIR": str(tmp_path),
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    assert parent.wait(timeout=60) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
    parent.stdout.close()
