"""open_alert / update_alert / update_running_alerts: file and row first, the broadcast only
after commit."""

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from django.db.models.signals import pre_save

from alerts.models import Alert
from alerts.services import (
    ALERTS_GROUP,
    RunningScores,
    open_alert,
    update_alert,
    update_running_alerts,
)
from alerts.tasks import purge_orphan_files

from .conftest import RATE, alert_kwargs, tone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener():
    """A channel in the ``alerts`` group of the in-memory layer; returns receive(timeout)."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ALERTS_GROUP, channel)

    def receive(timeout=1.0):
        async def once():
            try:
                return await asyncio.wait_for(layer.receive(channel), timeout)
            except TimeoutError:
                return None

        return async_to_sync(once)()

    yield receive
    async_to_sync(layer.group_discard)(ALERTS_GROUP, channel)


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_open_alert_stores_row_and_snippet_then_broadcasts_after_commit(media, device, listener):
    with transaction.atomic():
        alert = open_alert(**alert_kwargs(device, seconds=4.5))
        # Inside the transaction: the file is complete, the row exists, nobody was told yet.
        assert Path(alert.snippet.path).is_file()
        assert listener(timeout=0.2) is None
    message = listener()
    assert message["type"] == "alert.created"
    sent = message["alert"]
    assert sent["id"] == alert.pk
    assert sent["device"] == {"id": device.pk, "name": "mic-3a"}
    assert (sent["site"], sent["location"]) == ("Central Station", "Platform 3")
    # Coordinates from the location, the missing longitude from the site; floor-plan x/y.
    assert (sent["latitude"], sent["longitude"], sent["x"], sent["y"]) == (
        52.5201,
        13.40,
        0.25,
        0.75,
    )
    assert sent["status"] == "new" and sent["open"] is True and sent["ended_at"] is None
    assert sent["snippet_url"].startswith("/media/snippets/") and sent["snippet_url"].endswith(
        ".flac"
    )
    assert sent["score_curve"][0] == [2.0, 0.6]
    assert sent["peak_score"] == 0.97 and sent["model_version"] == "abc123def456"

    stored = Alert.objects.get(pk=alert.pk)
    assert stored.started_at == datetime(2025, 5, 1, 12, 0, 2, tzinfo=UTC)
    audio, rate = soundfile.read(stored.snippet.path, dtype="float32")
    assert rate == RATE and audio.shape[0] == int(4.5 * RATE)
    assert np.max(np.abs(audio - tone(4.5))) < 1e-3


def test_rolled_back_open_alert_broadcasts_nothing_and_its_file_is_swept(media, device, listener):
    with pytest.raises(RuntimeError), transaction.atomic():
        open_alert(**alert_kwargs(device))
        raise RuntimeError("caller failed after open_alert")
    assert Alert.objects.count() == 0
    assert listener(timeout=0.3) is None
    # The caller's own transaction rolled back: the orphan sweep removes the file.
    assert len(media_files(media)) == 1
    assert purge_orphan_files(min_age_s=0) == 1
    assert media_files(media) == []


def test_failed_row_write_leaves_no_file_and_sends_nothing(media, device, listener):
    """Whatever fails while the row is written (here a pre_save receiver) takes the file along."""

    def refuse(sender, instance, **kwargs):
        raise IntegrityError("database refused the alert row")

    pre_save.connect(refuse, sender=Alert, dispatch_uid="refuse-alert")
    try:
        with pytest.raises(IntegrityError, match="refused"):
            open_alert(**alert_kwargs(device))
    finally:
        pre_save.disconnect(dispatch_uid="refuse-alert", sender=Alert)
    assert Alert.objects.count() == 0
    assert media_files(media) == []
    assert listener(timeout=0.3) is None


def test_update_alert_updates_the_same_alert_and_replaces_the_snippet(media, device, listener):
    alert = open_alert(**alert_kwargs(device, seconds=3.0))
    assert listener()["type"] == "alert.created"
    first_file = Path(alert.snippet.path)

    continued = update_alert(
        alert.pk, peak_score=0.99, mean_score=0.85, score_curve=[[2.1, 0.9], [2.2, 0.99]]
    )
    message = listener()
    assert message["type"] == "alert.updated" and message["alert"]["id"] == alert.pk
    assert message["alert"]["open"] is True and message["alert"]["peak_score"] == 0.99
    assert continued.snippet.name == alert.snippet.name  # no new audio: same file

    ended = datetime(2025, 5, 1, 12, 0, 9, tzinfo=UTC)
    closed = update_alert(
        alert.pk,
        ended_at=ended,
        peak_score=0.99,
        mean_score=0.8,
        score_curve=[[2.1, 0.9], [2.2, 0.99], [8.0, 0.2]],
        snippet=tone(10.0),
        snippet_rate=RATE,
    )
    message = listener()
    assert message["type"] == "alert.updated"
    assert message["alert"]["ended_at"] == ended.isoformat() and message["alert"]["open"] is False
    assert Alert.objects.count() == 1
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.ended_at == ended and stored.score_curve[-1] == [8.0, 0.2]
    assert stored.snippet.name == closed.snippet.name != alert.snippet.name
    assert soundfile.info(stored.snippet.path).duration == pytest.approx(10.0)
    assert not first_file.exists()  # the replaced snippet is gone
    assert media_files(media) == [Path(stored.snippet.path)]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"peak_score": 1.5}, "peak_score"),
        ({"mean_score": float("nan")}, "mean_score"),
        ({"score_curve": [[0.1, 2.0]]}, "score curve"),
        ({"score_curve": [[0.1]]}, "pairs"),
    ],
)
def test_bad_scores_are_refused_before_anything_is_written(media, device, override, message):
    with pytest.raises(ValueError, match=message):
        open_alert(**alert_kwargs(device, **override))
    assert Alert.objects.count() == 0 and media_files(media) == []


def test_wav_snippets_when_configured(media, device, settings):
    settings.EYESCREAM_SNIPPET_FORMAT = "wav"
    alert = open_alert(**alert_kwargs(device, seconds=2.0))
    assert alert.snippet.name.endswith(".wav")
    assert soundfile.info(io.BytesIO(Path(alert.snippet.path).read_bytes())).format == "WAV"


def test_an_alert_without_audio_is_still_stored_and_broadcast(media, device, listener):
    alert = open_alert(**alert_kwargs(device, snippet=np.zeros(0, np.float32)))
    message = listener()
    assert message["type"] == "alert.created" and message["alert"]["snippet_url"] is None
    assert Alert.objects.get(pk=alert.pk).snippet.name == "" and media_files(media) == []
    # The closing update brings the audio.
    update_alert(
        alert.pk,
        peak_score=0.9,
        mean_score=0.8,
        score_curve=[],
        snippet=tone(2.0),
        snippet_rate=RATE,
    )
    assert listener()["alert"]["snippet_url"].endswith(".flac")


def test_running_alerts_are_updated_together_and_each_broadcast(media, device, listener):
    first = open_alert(**alert_kwargs(device))
    second = open_alert(**alert_kwargs(device))
    gone = open_alert(**alert_kwargs(device))
    assert [listener()["type"] for _ in range(3)] == ["alert.created"] * 3
    Alert.objects.filter(pk=second.pk).update(status=Alert.CONFIRMED)  # an operator meanwhile
    Alert.objects.filter(pk=gone.pk).delete()

    written = update_running_alerts(
        {
            first.pk: RunningScores(0.97, 0.81, [[2.0, 0.7], [2.1, 0.97]]),
            second.pk: RunningScores(0.93, 0.77, [[2.0, 0.93]]),
            gone.pk: RunningScores(0.9, 0.9, [[2.0, 0.9]]),
        }
    )

    assert written == sorted([first.pk, second.pk])
    got = {m["alert"]["id"]: m for m in (listener(), listener())}
    assert listener(timeout=0.3) is None  # nothing for the deleted alert
    assert {m["type"] for m in got.values()} == {"alert.updated"}
    assert got[first.pk]["alert"]["peak_score"] == 0.97
    assert got[first.pk]["alert"]["score_curve"] == [[2.0, 0.7], [2.1, 0.97]]
    stored = Alert.objects.get(pk=second.pk)
    assert (stored.peak_score, stored.mean_score) == (0.93, 0.77)
    assert stored.score_curve == [[2.0, 0.93]]
    assert stored.status == Alert.CONFIRMED  # the review is kept
    assert stored.snippet.name == second.snippet.name and stored.ended_at is None
    assert stored.updated > second.updated


def test_running_scores_are_checked_before_anything_is_written(media, device, listener):
    alert = open_alert(**alert_kwargs(device))
    listener()
    with pytest.raises(ValueError, match="peak_score"):
        update_running_alerts(
            {alert.pk: RunningScores(0.9, 0.8, [[2.0, 0.9]]), 10**9: RunningScores(1.5, 0.8, [])}
        )
    assert Alert.objects.get(pk=alert.pk).peak_score == alert.peak_score
    assert listener(timeout=0.3) is None
    assert update_running_alerts({}) == []
