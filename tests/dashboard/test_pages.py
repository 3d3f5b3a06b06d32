"""What the operator pages hand to the browser: devices placed on the map or the floor plan,
their state, the review queue's filters and which alert opens next."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile

from alerts.models import Alert
from alerts.pages import next_new_alert
from devices.models import Device, Location
from devices.positions import latlng_to_plan, location_latlng, plan_to_latlng

from .conftest import make_alert
from .test_permissions import PNG_1PX

BOUNDS = [[52.0, 13.0], [52.002, 13.004]]


def page_data(response) -> dict:
    match = re.search(
        rb'<script id="page-data" type="application/json">(.*?)</script>', response.content, re.S
    )
    assert match, "no page data"
    return json.loads(match.group(1))


def test_floor_plan_fractions_map_into_the_bounds_and_back():
    assert plan_to_latlng(0.0, 0.0, BOUNDS) == (52.002, 13.0)  # top left = north west
    assert plan_to_latlng(1.0, 1.0, BOUNDS) == (52.0, 13.004)
    lat, lng = plan_to_latlng(0.25, 0.75, BOUNDS)
    assert latlng_to_plan(lat, lng, BOUNDS) == pytest.approx((0.25, 0.75))


@pytest.mark.django_db
def test_map_places_devices_by_coordinates_or_floor_plan_and_marks_the_alerting_one(
    client, users, device, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.EYESCREAM_TILE_URL = "none"
    site = device.location.site
    site.floor_plan.save("plan.png", ContentFile(PNG_1PX), save=False)
    site.floor_plan_bounds = BOUNDS
    site.save()
    indoor = Location.objects.create(site=site, name="Restroom", x=0.5, y=0.5)
    quiet = Device.objects.create(location=indoor, name="restroom-mic")
    assert location_latlng(indoor, site) == pytest.approx((52.001, 13.002))
    alert = make_alert(device)
    make_alert(device, status=Alert.DISMISSED)
    client.force_login(users["operator"])
    data = page_data(client.get("/"))
    assert data["tile_url"] == ""  # no tiles: the map still draws markers and floor plans
    assert data["sites"][0]["floor_plan_url"] == f"/sites/{site.pk}/floor-plan/"
    by_name = {d["name"]: d for d in data["devices"]}
    assert by_name["mic-3a"]["alerting"] and by_name["mic-3a"]["new_alerts"] == [alert.pk]
    assert not by_name["restroom-mic"]["alerting"]
    assert (by_name["restroom-mic"]["latitude"], by_name["restroom-mic"]["longitude"]) == (
        pytest.approx(52.001),
        pytest.approx(13.002),
    )
    assert data["last_id"] == max(a["id"] for a in data["alerts"])
    assert quiet.pk == by_name["restroom-mic"]["id"]


@pytest.mark.django_db
def test_queue_filters_and_the_next_alert(client, users, device):
    oldest = make_alert(device, minutes_ago=30)
    middle = make_alert(device, minutes_ago=20)
    newest = make_alert(device, minutes_ago=10)
    done = make_alert(device, minutes_ago=5, status=Alert.CONFIRMED)
    client.force_login(users["operator"])

    def rows(query: str) -> list[int]:
        return [int(i) for i in re.findall(rb'<tr data-id="(\d+)"', client.get(query).content)]

    assert rows("/alerts/") == [newest.pk, middle.pk, oldest.pk]  # new ones by default
    assert rows("/alerts/?status=confirmed") == [done.pk]
    assert rows("/alerts/?status=all") == [done.pk, newest.pk, middle.pk, oldest.pk]
    assert rows("/alerts/?status=all&site=Nowhere") == []
    between = oldest.started_at + timedelta(minutes=5)  # UTC is the site's time zone here
    since = between.replace(tzinfo=None).isoformat(timespec="minutes")  # naive, like the form
    assert rows(f"/alerts/?status=all&since={since}") == [done.pk, newest.pk, middle.pk]
    bad = client.get("/alerts/?status=all&since=yesterday").content.decode()
    assert '<p class="error">Since: must be an ISO 8601 date and time.</p>' in bad
    assert "ErrorDetail" not in bad
    assert next_new_alert(newest) == middle
    assert next_new_alert(oldest) == newest  # nothing older pending: back to the newest
    data = page_data(client.get(f"/alerts/{middle.pk}/"))
    assert data["next_url"] == f"/alerts/{oldest.pk}/"
