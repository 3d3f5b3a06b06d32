"""Reviewed alerts whose snippets are real recordings, for the feedback tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import soundfile
from django.contrib.auth.models import Group

from accounts.permissions import ADMINS, OPERATORS
from alerts.reviews import review_alert
from alerts.services import open_alert, update_alert
from devices.models import Device, Location, Site

PASSWORD = "pw-for-tests-only"
RATE = 16_000
# Real recordings (../shared/datasets/real-v1): a scream, and sounds that are not screams.
SCREAM = "audio/yt-scream-sfx/yt_scream_sfx_00.flac"  # labelled 1 from 1.93 s to 4.87 s
NOT_SCREAMS = {
    "0_0": "audio/donateacry",
    "0_1": "audio/cats-dogs/cat_1.flac",
    "0_2": "audio/speech-tr/file1.flac",
}


def first_file(folder: Path) -> Path:
    return sorted(folder.glob("*.flac"))[0]


def clip(real_v1: Path, rel: str, seconds: float = 8.0, offset: float = 0.0):
    """Mono float32 at 16 kHz (as a device streams it) of a real recording."""
    from detection.dataset import load_audio

    path = real_v1 / rel
    if path.is_dir():
        path = first_file(path)
    audio = load_audio(path, RATE)
    start = int(offset * RATE)
    return audio[start : start + int(seconds * RATE)]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EYESCREAM_EAGER_TASKS_INLINE = True
    settings.EYESCREAM_ALERT_IMAGES = False
    return settings.MEDIA_ROOT


@pytest.fixture
def people(db, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    def make(name, group):
        user = django_user_model.objects.create_user(name, password=PASSWORD)
        if group:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        return user

    return {
        "operator": make("op1", OPERATORS),
        "admin": make("boss", ADMINS),
        "plain": make("plain", None),
    }


def place(site_name: str, device_name: str) -> Device:
    site, _ = Site.objects.get_or_create(name=site_name, defaults={"latitude": 1, "longitude": 2})
    location, _ = Location.objects.get_or_create(site=site, name="Gate")
    return Device.objects.create(location=location, name=device_name)


def make_alert(device: Device, audio, when: datetime, incident=(2.0, 5.0)):
    """A closed alert whose snippet is ``audio`` (16 kHz) and whose incident runs from
    ``incident[0]`` to ``incident[1]`` seconds into it."""
    snippet_start = when
    alert = open_alert(
        device_id=device.pk,
        started_at=snippet_start + timedelta(seconds=incident[0]),
        peak_score=0.95,
        mean_score=0.8,
        score_curve=[[incident[0], 0.9]],
        model_version="850b94454ae0",
        snippet=audio,
        snippet_rate=RATE,
        snippet_started_at=snippet_start,
    )
    return update_alert(
        alert.pk,
        ended_at=snippet_start + timedelta(seconds=incident[1]),
        peak_score=0.95,
        mean_score=0.8,
        score_curve=[[incident[0], 0.9]],
    )


@pytest.fixture
def reviewed(media, people, real_v1):
    """Alerts at two sites: one confirmed scream, three dismissed (one of each reason), one
    dismissed then withdrawn, one never reviewed."""
    yard = place("Yard", "yard-mic")
    depot = place("Depot", "depot-mic")
    base = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    op = people["operator"]
    alerts = {}
    alerts["scream"] = make_alert(yard, clip(real_v1, SCREAM), base, incident=(1.9, 4.9))
    review_alert(alerts["scream"].pk, op, "1")
    for n, (label, rel) in enumerate(NOT_SCREAMS.items()):
        device = yard if n % 2 else depot
        alert = make_alert(device, clip(real_v1, rel, 5.0), base + timedelta(minutes=n + 1))
        review_alert(alert.pk, op, label)
        alerts[label] = alert
    alerts["withdrawn"] = make_alert(depot, clip(real_v1, NOT_SCREAMS["0_2"], 4.0, 1.0), base)
    withdrawn = review_alert(alerts["withdrawn"].pk, op, "0_2")
    from alerts.reviews import latest_review, revise_review

    revise_review(withdrawn.pk, op, "", latest_review(withdrawn).pk)
    alerts["new"] = make_alert(depot, clip(real_v1, NOT_SCREAMS["0_1"], 3.0), base)
    return alerts


def snippet_file(alert) -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT) / alert.snippet.name


def read_flac(path: Path):
    return soundfile.read(str(path), dtype="float32")
