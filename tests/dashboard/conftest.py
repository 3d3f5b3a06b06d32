"""Users in each role, a placed device and alerts, for the dashboard tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group

from accounts.permissions import ADMINS, OPERATORS
from alerts.models import Alert
from devices.models import Device, Location, Site

PASSWORD = "pw-for-tests-only"


def make_user(django_user_model, name: str, group: str | None = None, **extra):
    user = django_user_model.objects.create_user(name, password=PASSWORD, **extra)
    if group:
        user.groups.add(
            Group.objects.get_or_create(name=group)[0]
        )  # flushed by transactional tests
    return user


@pytest.fixture
def users(db, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests
    return {
        "plain": make_user(django_user_model, "plain"),
        "operator": make_user(django_user_model, "op1", OPERATORS),
        "operator2": make_user(django_user_model, "op2", OPERATORS),
        "admin": make_user(django_user_model, "boss", ADMINS),
        "superuser": make_user(django_user_model, "root", is_superuser=True, is_staff=True),
    }


@pytest.fixture
def device(db):
    site = Site.objects.create(name="Central Station", latitude=52.52, longitude=13.40)
    location = Location.objects.create(
        site=site, name="Platform 3", latitude=52.5201, longitude=13.4001
    )
    return Device.objects.create(location=location, name="mic-3a")


def make_alert(device, minutes_ago: float = 1.0, **fields) -> Alert:
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    values = dict(
        device=device,
        device_name=device.name,
        site_name=device.location.site.name,
        location_name=device.location.name,
        latitude=device.location.latitude,
        longitude=device.location.longitude,
        started_at=started,
        peak_score=0.95,
        mean_score=0.8,
        score_curve=[[2.0, 0.7], [2.1, 0.95]],
        model_version="test-model",
    )
    values.update(fields)
    return Alert.objects.create(**values)


@pytest.fixture
def alert(device):
    return make_alert(device)
