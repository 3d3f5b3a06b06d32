"""Per-site local time: a site's IANA zone is validated everywhere it is set (model, /manage/,
the API), pages show its alerts' times in it with the zone named, and the API stays ISO 8601
with the offset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from alerts.reviews import review_alert
from devices.models import Site

from .conftest import make_alert


@pytest.mark.django_db
def test_a_new_site_takes_the_server_zone_and_a_bad_zone_is_refused(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    site = Site.objects.create(name="Default zone")
    assert site.time_zone == "Europe/Berlin"
    for bad in ("Mars/Olympus_Mons", "europe/berlin", " UTC", ""):
        site.time_zone = bad
        with pytest.raises(ValidationError) as refused:
            site.full_clean()
        assert "time_zone" in refused.value.message_dict, bad
    site.time_zone = "Asia/Seoul"
    site.full_clean()


@pytest.mark.django_db
def test_the_api_sets_and_validates_the_zone_and_keeps_iso_times(users, device):
    api = APIClient()
    api.force_authenticate(users["admin"])
    site = device.location.site
    bad = api.patch(f"/api/sites/{site.pk}/", {"time_zone": "Nowhere/Land"}, format="json")
    assert bad.status_code == 400 and "time_zone" in bad.data
    assert "IANA" in str(bad.data["time_zone"][0])
    good = api.patch(f"/api/sites/{site.pk}/", {"time_zone": "Asia/Seoul"}, format="json")
    assert good.status_code == 200 and good.data["time_zone"] == "Asia/Seoul"
    make_alert(device, started_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    listed = api.get("/api/alerts/").json()[0]
    assert listed["started_at"] == "2026-03-01T12:00:00+00:00"  # ISO 8601 with its offset
    assert listed["time_zone"] == "Asia/Seoul"


@pytest.mark.django_db
def test_the_manage_form_offers_zones_and_audits_the_change(client, users, device):
    client.force_login(users["admin"])
    site = device.location.site
    form = client.get(f"/manage/sites/{site.pk}/").content.decode()
    assert '<option value="Asia/Seoul">' in form
    fields = {"name": site.name, "latitude": 52.5, "longitude": 13.4}
    bad = client.post(f"/manage/sites/{site.pk}/", {**fields, "time_zone": "Atlantis/City"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    ok = client.post(f"/manage/sites/{site.pk}/", {**fields, "time_zone": "America/New_York"})
    assert ok.status_code == 302
    site.refresh_from_db()
    assert site.time_zone == "America/New_York"
    event = AuditEvent.objects.get(action="change", object_type="devices.site")
    assert "time_zone" in event.details["fields"]


@pytest.mark.django_db
def test_pages_show_an_alerts_times_in_its_sites_zone_with_the_zone_named(
    client, users, device, settings
):
    settings.TIME_ZONE = "UTC"
    Site.objects.filter(pk=device.location.site_id).update(time_zone="Asia/Seoul")
    alert = make_alert(device, started_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    review_alert(alert.pk, users["operator"], "1")
    client.force_login(users["operator"])
    queue = client.get("/alerts/?status=all").content.decode()
    assert "2026-03-01 21:00:00 KST" in queue and 'title="Asia/Seoul"' in queue
    detail = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "2026-03-01 21:00:00 KST" in detail
    assert "Asia/Seoul, the site's local time" in detail
    export = b"".join(client.get("/alerts/export.csv?status=all").streaming_content).decode()
    assert "2026-03-01T12:00:00+00:00,2026-03-01 21:00:00 KST,Asia/Seoul" in export


@pytest.mark.django_db
def test_the_admin_site_refuses_an_unknown_zone(client, users, device):
    client.force_login(users["superuser"])
    site = device.location.site
    url = f"/admin/devices/site/{site.pk}/change/"
    form = {
        "name": site.name,
        "time_zone": "Moon/Base",
        "locations-TOTAL_FORMS": "0",
        "locations-INITIAL_FORMS": "0",
    }
    bad = client.post(url, form)
    assert bad.status_code == 200 and "is not a time zone this server knows" in bad.content.decode()
    good = client.post(url, {**form, "time_zone": "Europe/Lisbon"})
    assert good.status_code == 302
    site.refresh_from_db()
    assert site.time_zone == "Europe/Lisbon"
