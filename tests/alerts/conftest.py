"""Fixtures of the alerts tests: a device in its place, media under tmp, tasks inline."""

from datetime import UTC, datetime

import numpy as np
import pytest

from devices.models import Device, Location, Site

RATE = 22_050


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EYESCREAM_EAGER_TASKS_INLINE = True
    settings.EYESCREAM_ALERT_IMAGES = False  # tests that want the picture turn it on
    return settings.MEDIA_ROOT


@pytest.fixture
def device(db):
    site = Site.objects.create(name="Central Station", latitude=52.52, longitude=13.40)
    location = Location.objects.create(
        site=site, name="Platform 3", latitude=52.5201, longitude=None, x=0.25, y=0.75
    )
    return Device.objects.create(location=location, name="mic-3a")


def tone(seconds: float, rate: int = RATE, freq: float = 880.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def alert_kwargs(device, seconds: float = 4.0, **overrides) -> dict:
    started = datetime(2025, 5, 1, 12, 0, 2, tzinfo=UTC)
    kwargs = dict(
        device_id=device.pk,
        started_at=started,
        peak_score=0.97,
        mean_score=0.81,
        score_curve=[[2.0 + 0.1 * i, 0.6 + 0.03 * i] for i in range(10)],
        model_version="abc123def456",
        snippet=tone(seconds),
        snippet_rate=RATE,
        snippet_started_at=datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC),
    )
    kwargs.update(overrides)
    return kwargs
