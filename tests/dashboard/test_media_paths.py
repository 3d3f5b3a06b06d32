"""Snippets and pictures are served only through the operators' permission-checked view, from
their own folder, under names no one can guess; no path leads out of the folder."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile

from alerts.snippets import snippet_name

from .conftest import make_alert


@pytest.fixture
def media(settings, tmp_path, users, device):
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "secret.txt").write_text("outside the media folder")
    (tmp_path / "media" / "floor_plans").mkdir(parents=True)
    (tmp_path / "media" / "floor_plans" / "plan.png").write_bytes(b"plan")
    alert = make_alert(device)
    alert.snippet.save(snippet_name(device.pk, alert.started_at, "flac"), ContentFile(b"fLaC"))
    return alert


def test_snippet_names_carry_a_random_part():
    when = datetime(2026, 5, 1, 12, tzinfo=UTC)
    names = {snippet_name(3, when, "flac") for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"snippets/2026/05/01/device3-.+-[0-9a-f]{10}\.flac", n) for n in names)


@pytest.mark.parametrize(
    "path",
    [
        "/media/snippets/../secret.txt",
        "/media/snippets/%2e%2e/%2e%2e/secret.txt",
        "/media/snippets/..%2f..%2fsecret.txt",
        "/media/snippets//etc/passwd",
        "/media/snippets/%2fetc%2fpasswd",
        "/media/spectrograms/../floor_plans/plan.png",
        "/media/snippets/2026/",
        "/media/floor_plans/plan.png",
        "/media/secret.txt",
    ],
)
def test_no_path_leads_out_of_the_media_folders(client, users, media, path):
    client.force_login(users["operator"])
    response = client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"outside the media folder" not in body and b"plan" != body


def test_a_snippet_is_served_to_operators_only(client, users, media):
    url = media.snippet.url
    assert url.startswith("/media/snippets/")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(users["plain"])
    assert client.get(url).status_code == 403
    client.force_login(users["operator"])
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"fLaC"
    assert response["Cache-Control"] == "private, max-age=3600"
    assert response["X-Content-Type-Options"] == "nosniff"
