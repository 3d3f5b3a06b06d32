"""Celery tasks run eagerly: spectrogram picture, retention purge, offline sweep."""

import io
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from PIL import Image

from alerts.images import nice_step, render_png, spectrogram_rgb
from alerts.models import Alert, Review
from alerts.schedule import beat_schedule
from alerts.services import ALERTS_GROUP, open_alert, update_alert
from alerts.tasks import purge_old_alerts, render_alert_image, sweep_offline_devices
from detection.features import FeatureConfig
from devices.models import Device

from .conftest import alert_kwargs

SCREAM = "audio/screamdet-main/319258_ramston_woman-screaming-of-fear.flac"


def test_render_png_draws_spectrogram_over_score_curve():
    rate = 16_000
    t = np.arange(3 * rate) / rate
    loud = (0.5 * np.sin(2 * np.pi * (300 + 1500 * t) * t)).astype(np.float32)
    curve = [[1.0 + 0.1 * i, min(1.0, 0.1 * i)] for i in range(15)]
    png = render_png(loud, rate, curve, FeatureConfig(), threshold=0.6, title="x")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 360)
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    silent = render_png(np.zeros(3 * rate, np.float32), rate, [], FeatureConfig())
    # The sweep and the curve make a different picture than silence without a curve.
    assert np.abs(pixels - np.asarray(Image.open(io.BytesIO(silent)).convert("L"))).mean() > 5


def test_spectrogram_colours_put_low_bands_at_the_bottom_and_span_the_dynamic_range():
    columns = np.full((64, 5), -100.0, dtype=np.float32)
    columns[0, :] = 0.0  # the lowest band is the loudest
    rgb = spectrogram_rgb(columns)
    assert rgb.shape == (64, 5, 3) and rgb.dtype == np.uint8
    # Bottom row (lowest band) brightest, everything 100 dB below it the darkest colour.
    assert (rgb[-1].astype(int).sum(axis=1) > 600).all()
    assert (rgb[:-1].astype(int).sum(axis=2) < 10).all()
    assert spectrogram_rgb(np.zeros((64, 0), np.float32)).shape == (64, 0, 3)


@pytest.mark.parametrize("span", [0.3, 1.0, 1.9, 6.0, 20.0, 77.0])
def test_time_axis_steps_are_round_and_at_most_ten(span):
    step = nice_step(span)
    assert span / step <= 10 and span / step > 2
    assert round(step / 10 ** np.floor(np.log10(step)), 6) in (1.0, 2.0, 2.5, 5.0)


@pytest.mark.django_db
def test_render_task_writes_png_of_a_real_scream_and_broadcasts_it(media, device, real_v1):
    audio, rate = soundfile.read(real_v1 / SCREAM, dtype="float32")
    audio = audio[: 6 * rate] if audio.ndim == 1 else audio[: 6 * rate].mean(axis=1)
    alert = open_alert(**alert_kwargs(device, snippet=audio, snippet_rate=rate))
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ALERTS_GROUP, channel)

    name = render_alert_image(alert.pk)

    alert.refresh_from_db()
    assert alert.spectrogram.name == name
    path = Path(alert.spectrogram.path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(path).size == (800, 360)
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "alert.updated"
    assert message["alert"]["spectrogram_url"] == f"/media/{name}"
    # Rendering again replaces the old picture rather than piling files up.
    second = render_alert_image(alert.pk)
    assert second != name and not path.exists()


@pytest.mark.django_db
def test_a_task_queued_for_an_older_snippet_draws_nothing(media, device, real_v1):
    audio, rate = soundfile.read(real_v1 / SCREAM, dtype="float32")
    audio = audio[: 3 * rate] if audio.ndim == 1 else audio[: 3 * rate].mean(axis=1)
    alert = open_alert(**alert_kwargs(device, snippet=audio, snippet_rate=rate))
    queued_for = alert.snippet.name
    # The incident closed before the backlog reached the first task: a new snippet.
    update_alert(
        alert.pk,
        peak_score=0.99,
        mean_score=0.9,
        score_curve=[[2.0, 0.99]],
        snippet=np.concatenate([audio, audio]),
        snippet_rate=rate,
    )
    alert.refresh_from_db()
    assert alert.snippet.name != queued_for

    assert render_alert_image(alert.pk, queued_for) is None
    alert.refresh_from_db()
    assert not alert.spectrogram
    assert not list(Path(media).rglob("*.png"))

    name = render_alert_image(alert.pk, alert.snippet.name)
    alert.refresh_from_db()
    assert alert.spectrogram.name == name


@pytest.mark.django_db(transaction=True)
def test_open_alert_dispatches_the_picture_after_commit(media, device, settings):
    settings.EYESCREAM_ALERT_IMAGES = True
    alert = open_alert(**alert_kwargs(device))
    alert.refresh_from_db()
    assert alert.spectrogram.name.startswith("spectrograms/") and alert.spectrogram.name.endswith(
        ".png"
    )


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_renders_the_picture_off_the_callers_thread(media, device, settings):
    """Eager Celery, but the picture is drawn on the background task thread: open_alert
    returns first, and a burst of alerts does not start a thread each."""
    from alerts.task_queue import _eager_pool

    settings.EYESCREAM_ALERT_IMAGES = True
    settings.EYESCREAM_EAGER_TASKS_INLINE = False
    alert = open_alert(**alert_kwargs(device))
    for _ in range(3):
        open_alert(**alert_kwargs(device))
    workers = [t for t in threading.enumerate() if t.name.startswith("eager-task")]
    assert len(workers) == 1 and workers[0] is not threading.current_thread()
    _eager_pool().submit(lambda: None).result(timeout=60)  # after the queued pictures
    alert.refresh_from_db()
    assert alert.spectrogram.name.endswith(".png") and Path(alert.spectrogram.path).is_file()


@pytest.mark.django_db
def test_retention_purge_deletes_old_alerts_and_their_files(
    media, device, settings, django_capture_on_commit_callbacks
):
    settings.EYESCREAM_ALERT_RETENTION_DAYS = 30
    settings.EYESCREAM_REVIEWED_ALERT_RETENTION_DAYS = 365
    now = timezone.now()
    old = open_alert(**alert_kwargs(device, started_at=now - timedelta(days=40)))
    old_reviewed = open_alert(**alert_kwargs(device, started_at=now - timedelta(days=40)))
    Review.objects.create(alert=old_reviewed, label="1")
    ancient = open_alert(**alert_kwargs(device, started_at=now - timedelta(days=400)))
    Review.objects.create(alert=ancient, label="0_1")
    recent = open_alert(**alert_kwargs(device, started_at=now - timedelta(days=2)))
    files = {a.pk: Path(a.snippet.path) for a in (old, old_reviewed, ancient, recent)}
    stray = media / "snippets" / "stray.flac"
    stray.write_bytes(b"x")
    os.utime(stray, (time.time() - 7200, time.time() - 7200))

    with django_capture_on_commit_callbacks(execute=True):
        result = purge_old_alerts()

    assert result == {"alerts": 2, "orphans": 1}
    assert set(Alert.objects.values_list("pk", flat=True)) == {old_reviewed.pk, recent.pk}
    assert not files[old.pk].exists() and not files[ancient.pk].exists()
    assert files[old_reviewed.pk].exists() and files[recent.pk].exists()
    assert not stray.exists()


@pytest.mark.django_db
def test_offline_sweep_marks_silent_online_devices_offline(device, settings):
    settings.EYESCREAM_DEVICE_OFFLINE_AFTER_S = 60
    location = device.location
    now = timezone.now()
    Device.objects.filter(pk=device.pk).update(
        connection_state=Device.ONLINE, last_seen=now - timedelta(minutes=5), connection="x"
    )
    live = Device.objects.create(
        location=location, name="live", connection_state=Device.ONLINE, last_seen=now
    )
    idle = Device.objects.create(location=location, name="idle", last_seen=now - timedelta(days=1))
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ALERTS_GROUP, channel)

    assert sweep_offline_devices() == [device.pk]

    states = dict(Device.objects.values_list("pk", "connection_state"))
    assert states == {device.pk: "offline", live.pk: "online", idle.pk: "offline"}
    assert Device.objects.get(pk=device.pk).connection == ""
    message = async_to_sync(layer.receive)(channel)
    assert isinstance(message.pop("seq"), int)  # numbered, as every broadcast
    assert message == {"type": "devices.offline", "device_ids": [device.pk]}
    assert sweep_offline_devices() == []


def test_beat_schedule_names_registered_tasks():
    from eyescream_site.celery import app

    app.loader.import_default_modules()
    for entry in beat_schedule().values():
        assert entry["task"] in app.tasks
        assert entry["schedule"] > 0


def test_a_locked_database_write_is_retried_and_other_errors_are_not():
    from django.db import OperationalError

    from alerts.tasks import retry_when_locked

    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("database table is locked")
        return 7

    assert retry_when_locked(locked_twice, pause_s=0.001) == 7 and len(calls) == 3

    def broken():
        calls.append(1)
        raise OperationalError("no such table: alerts_alert")

    calls.clear()
    with pytest.raises(OperationalError):
        retry_when_locked(broken, pause_s=0.001)
    assert len(calls) == 1

    def always_locked():
        calls.append(1)
        raise OperationalError("database is locked")

    calls.clear()
    with pytest.raises(OperationalError):
        retry_when_locked(always_locked, attempts=2, pause_s=0.001)
    assert len(calls) == 2
