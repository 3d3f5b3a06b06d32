"""Device tokens: stored only as a keyed hash, never logged, rotation and revocation."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.db import connection

from devices import services
from devices.models import Device, Location, Site
from devices.protocol import ProtocolError
from devices.tokens import hash_token, new_token, token_matches


def test_tokens_are_long_random_and_hashed_with_a_key():
    a, b = new_token(), new_token()
    assert a != b and a.startswith("esd_") and len(a) == 4 + 43
    assert hash_token(a, "k1") != hash_token(a, "k2")
    assert len(hash_token(a, "k1")) == 64
    assert token_matches(a, hash_token(a, "k1"), "k1")
    assert not token_matches(b, hash_token(a, "k1"), "k1")
    assert not token_matches(a, None, "k1")


@pytest.fixture
def device(db):
    site = Site.objects.create(name="S", latitude=1.0, longitude=2.0)
    location = Location.objects.create(site=site, name="L", latitude=1.0, longitude=2.0)
    return Device.objects.create(location=location, name="mic")


def all_database_text() -> str:
    """Every value of every devices_* table, as text."""
    with connection.cursor() as cursor:
        chunks = []
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.append(repr(cursor.fetchall()))
    return "\n".join(chunks)


def test_only_the_hash_is_stored_and_the_token_is_never_logged(device, caplog):
    caplog.set_level(logging.DEBUG)
    token = services.issue_token(device)
    device.refresh_from_db()
    assert device.token_hash == hash_token(token, settings.DEVICE_TOKEN_KEY)
    assert token not in all_database_text()
    assert token[4:20] not in all_database_text()
    assert services.authenticate(token).pk == device.pk
    device.refresh_from_db()
    with pytest.raises(ProtocolError):
        services.authenticate(token + "x")
    assert token not in caplog.text and token[4:20] not in caplog.text


def test_rotation_invalidates_the_old_token(device):
    old = services.issue_token(device)
    new = services.issue_token(device)
    assert services.authenticate(new).pk == device.pk
    with pytest.raises(ProtocolError) as info:
        services.authenticate(old)
    assert info.value.error == "bad_token"


def test_revoked_expired_and_disabled(device):
    from datetime import timedelta

    from django.utils import timezone

    token = services.issue_token(device)
    services.revoke_token(device)
    with pytest.raises(ProtocolError) as info:
        services.authenticate(token)
    assert info.value.error == "bad_token"
    token = services.issue_token(device, expires=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ProtocolError) as info:
        services.authenticate(token)
    assert info.value.error == "token_expired"
    token = services.issue_token(device, expires=timezone.now() + timedelta(days=1))
    device.enabled = False
    device.save()
    with pytest.raises(ProtocolError) as info:
        services.authenticate(token)
    assert info.value.error == "device_disabled"
