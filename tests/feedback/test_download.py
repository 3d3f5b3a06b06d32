"""The export's download: admins only; the zip holds the same pack as the command writes."""

from __future__ import annotations

import io
import zipfile

import pytest

from detection.dataset import scan_roots

from .conftest import PASSWORD, snippet_file

pytestmark = pytest.mark.django_db

URL = "/feedback/export.zip"


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_anonymous_is_sent_to_the_login_page(client, reviewed):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("who", ["operator", "plain"])
def test_operators_and_plain_users_are_refused(client, reviewed, people, who):
    assert login(client, people[who]).get(URL).status_code == 403


def test_posting_is_not_a_download(client, people):
    assert login(client, people["admin"]).post(URL).status_code == 405


def test_an_admin_downloads_the_pack(client, reviewed, people, tmp_path):
    snippet_file(reviewed["0_1"]).unlink()
    response = login(client, people["admin"]).get(URL, {"site": "Yard"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["X-Feedback-Alerts"] == "1" and response["X-Feedback-Problems"] == "1"
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        names = bundle.namelist()
        assert "manifest.csv" in names
        problems = bundle.read("problems.txt").decode()
        assert f"alert {reviewed['0_1'].pk}: snippet file" in problems
        bundle.extractall(tmp_path / "pack")
    [recording] = scan_roots([tmp_path / "pack"]).recordings
    assert recording.has_scream and recording.source == "feedback"
    from accounts.models import AuditEvent

    event = AuditEvent.objects.get(action="feedback_export")
    assert event.details["site"] == "Yard" and event.details["alerts"] == 1


def test_a_bad_since_is_a_clear_400(client, people):
    response = login(client, people["admin"]).get(URL, {"since": "yesterday-ish"})
    assert response.status_code == 400 and b"since: not a date" in response.content
