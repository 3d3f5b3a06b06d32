"""The review queue's tools: bulk acknowledge (one verdict and reason for several alerts, each
its own Review row and audit event), filters by device, site, verdict, reviewer and time, and
the CSV export of exactly the filtered list."""

from __future__ import annotations

import csv
import io

import pytest

from accounts.models import AuditEvent
from alerts.models import Alert, Review
from alerts.reviews import ReviewError, review_alert, review_many
from devices.models import Device

from .conftest import make_alert


@pytest.fixture
def three(device):
    other = Device.objects.create(location=device.location, name="mic-3b")
    return [make_alert(device, 3), make_alert(device, 2), make_alert(other, 1)]


@pytest.mark.django_db
def test_bulk_acknowledge_writes_one_review_and_one_audit_event_per_alert(users, three):
    taken = three[1]
    review_alert(taken.pk, users["operator2"], "1")  # decided by someone else first
    ids = [a.pk for a in three]
    decided, skipped = review_many(ids, users["operator"], "0_1", " siren test ", "10.0.0.9")
    assert decided == [three[0].pk, three[2].pk]
    assert list(skipped) == [taken.pk] and "already confirmed by op2" in skipped[taken.pk]
    for alert in (three[0], three[2]):
        alert.refresh_from_db()
        assert alert.status == Alert.DISMISSED
        review = alert.reviews.get()
        assert (review.user, review.label, review.note) == (users["operator"], "0_1", "siren test")
    events = AuditEvent.objects.filter(action="review", actor_name="op1").order_by("object_id")
    assert [e.object_id for e in events] == [str(three[0].pk), str(three[2].pk)]
    assert all(e.details["note"] == "siren test" and e.source_ip == "10.0.0.9" for e in events)
    taken.refresh_from_db()
    assert taken.status == Alert.CONFIRMED and taken.reviews.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "ids", "error"),
    [("", [1], "choose a verdict"), ("7", [1], "unknown label"), ("1", [], "at least one")],
)
def test_a_bad_bulk_request_writes_nothing(users, three, label, ids, error):
    ids = [three[0].pk] if ids else []
    with pytest.raises(ReviewError, match=error):
        review_many(ids, users["operator"], label)
    assert not Review.objects.exists()
    assert not AuditEvent.objects.filter(action="review").exists()


@pytest.mark.django_db
def test_the_acknowledge_page_redirects_back_to_the_queue_with_what_it_did(client, users, three):
    client.force_login(users["operator"])
    back = "/alerts/?status=all&device_name=3a"
    response = client.post(
        "/alerts/acknowledge/",
        {"alert": [three[0].pk, three[1].pk], "label": "0_2", "note": "wind", "next": back},
    )
    assert response.status_code == 302 and response["Location"] == back
    page = client.get(back).content.decode()
    assert "2 alert(s) marked" in page
    assert Alert.objects.filter(status=Alert.DISMISSED).count() == 2
    again = client.post("/alerts/acknowledge/", {"alert": [three[0].pk], "label": "1"})
    assert again["Location"] == "/alerts/"
    assert "skipped: alert" in client.get("/alerts/").content.decode()
    outside = client.post(
        "/alerts/acknowledge/", {"alert": [three[2].pk], "next": "https://evil.example/"}
    )
    assert outside["Location"] == "/alerts/"  # never off the site
    assert "choose a verdict" in client.get("/alerts/").content.decode()
    assert client.get("/alerts/acknowledge/").status_code == 405


def listed(client, query: str) -> list[int]:
    response = client.get("/alerts/" + query)
    assert response.status_code == 200
    return [a.pk for a in response.context["page"].object_list]


def exported(client, query: str) -> list[dict]:
    response = client.get("/alerts/export.csv" + query)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="alerts-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.django_db
def test_filters_and_the_export_agree(client, users, three):
    review_alert(three[0].pk, users["operator2"], "0_0", "cheering")
    review_alert(three[2].pk, users["operator"], "1")
    make_alert(three[0].device, 0.5, site_name="Elsewhere")
    client.force_login(users["operator"])
    cases = {
        "?status=all&device_name=3B": [three[2].pk],
        "?status=all&label=0_0": [three[0].pk],
        "?status=all&label=none&site=Central%20Station": [three[1].pk],
        "?status=all&reviewer=OP1": [three[2].pk],
        "?status=all&reviewer=op2&label=1": [],
        "?status=dismissed": [three[0].pk],
    }
    for query, ids in cases.items():
        assert listed(client, query) == ids, query
        rows = exported(client, query)
        assert [int(r["id"]) for r in rows] == ids, query
    row = exported(client, "?status=all&label=0_0")[0]
    assert (row["reviewer"], row["label"], row["note"], row["device"]) == (
        "op2",
        "0_0",
        "cheering",
        "mic-3a",
    )
    assert row["started_at"].endswith("+00:00") and row["reviewed_at"]
    assert [int(r["id"]) for r in exported(client, "")] == listed(client, "")  # new ones


@pytest.mark.django_db
def test_a_bad_filter_says_so_in_words_and_exports_nothing(client, users, three):
    client.force_login(users["operator"])
    page = client.get("/alerts/?label=maybe").content.decode()
    assert "Label: unknown label" in page
    response = client.get("/alerts/export.csv?label=maybe")
    assert response.status_code == 302
    assert "Nothing exported" in client.get(response["Location"]).content.decode()
    assert client.get("/api/alerts/?label=maybe").status_code == 400
    assert client.get("/api/alerts/?reviewer=nobody").json() == []


@pytest.mark.django_db
def test_the_api_acknowledges_in_bulk_and_names_what_it_skipped(client, users, three):
    review_alert(three[1].pk, users["operator2"], "1")
    client.force_login(users["operator"])
    body = {"alerts": [a.pk for a in three], "label": "0_2", "note": "wind"}
    response = client.post("/api/alerts/acknowledge/", body, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["reviewed"] == [three[0].pk, three[2].pk]
    assert "already confirmed by op2" in response.json()["skipped"][str(three[1].pk)]
    assert AuditEvent.objects.filter(action="review", actor_name="op1").count() == 2
    for bad in ({"alerts": [], "label": "1"}, {"alerts": [three[0].pk], "label": ""}):
        answer = client.post("/api/alerts/acknowledge/", bad, content_type="application/json")
        assert answer.status_code == 400, bad
