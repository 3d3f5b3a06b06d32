"""Alert media are served to operators only, and only from their own folders."""

import io

import pytest
import soundfile
from django.contrib.auth.models import Group

from accounts.permissions import OPERATORS
from alerts.services import open_alert

from .conftest import RATE, alert_kwargs


@pytest.mark.django_db
def test_snippet_is_served_to_operators_only(client, django_user_model, media, device):
    alert = open_alert(**alert_kwargs(device, seconds=2.0))
    url = alert.snippet.url
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")

    client.force_login(django_user_model.objects.create_user("visitor", password="x-long-pass"))
    assert client.get(url).status_code == 403  # logged in, but not an operator

    operator = django_user_model.objects.create_user("op", password="x-long-pass")
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS)[0])
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 200 and "private" in response["Cache-Control"]
    audio, rate = soundfile.read(io.BytesIO(b"".join(response.streaming_content)))
    assert rate == RATE and audio.shape[0] == 2 * RATE

    (media / "secret.txt").write_text("not an alert file")
    assert client.get("/media/snippets/../secret.txt").status_code in (400, 404)
    assert client.get("/media/secret.txt").status_code == 404
    assert client.get("/media/snippets/missing.flac").status_code == 404


@pytest.mark.django_db
def test_snippet_answers_byte_ranges_so_the_player_can_seek(
    client, django_user_model, media, device
):
    alert = open_alert(**alert_kwargs(device, seconds=2.0))
    url = alert.snippet.url
    whole = (media / alert.snippet.name).read_bytes()
    size = len(whole)
    operator = django_user_model.objects.create_user("op", password="x-long-pass")
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS)[0])
    client.force_login(operator)

    full = client.get(url)
    assert full.status_code == 200 and full["Accept-Ranges"] == "bytes"
    assert b"".join(full.streaming_content) == whole

    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{size}"
    assert part.content == whole[100:200] and part["Content-Type"] == full["Content-Type"]
    assert "private" in part["Cache-Control"]

    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and tail.content == whole[-10:]
    assert tail["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
    rest = client.get(url, HTTP_RANGE=f"bytes={size - 5}-")
    assert rest.status_code == 206 and rest.content == whole[-5:]
    beyond = client.get(url, HTTP_RANGE=f"bytes={size + 10}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"
    several = client.get(url, HTTP_RANGE="bytes=0-1,5-6")  # several ranges: the whole file
    assert several.status_code == 200

    assert client.get("/media/snippets/../secret.txt", HTTP_RANGE="bytes=0-1").status_code in (
        400,
        404,
    )
    client.logout()
    anonymous = client.get(url, HTTP_RANGE="bytes=0-9")
    assert anonymous.status_code == 302  # ranges are no way around the login
