"""Confirm/dismiss: a Review row with who/label/note, the status change, first decision wins,
``alert.updated`` (with the review) to the ``alerts`` group after commit; and the JSON API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.models import AuditEvent
from alerts.models import Alert, Review
from alerts.reviews import (
    AlreadyReviewed,
    NothingToRevise,
    ReviewError,
    review_alert,
    revise_review,
)
from alerts.services import ALERTS_GROUP

from .conftest import make_alert


def listen():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ALERTS_GROUP, channel)
    return lambda: async_to_sync(layer.receive)(channel)


@pytest.mark.django_db(transaction=True)
def test_first_decision_wins_and_is_broadcast_after_commit(users, device):
    alert = make_alert(device)
    receive = listen()
    decided = review_alert(alert.pk, users["operator"], "1", "  clearly a scream  ")
    assert decided.status == Alert.CONFIRMED
    event = receive()
    assert event["type"] == "alert.updated"
    assert event["alert"]["id"] == alert.pk and event["alert"]["status"] == "confirmed"
    assert event["alert"]["review"]["user"] == "op1"
    assert event["alert"]["review"]["note"] == "clearly a scream"

    with pytest.raises(AlreadyReviewed, match="already confirmed by op1") as taken:
        review_alert(alert.pk, users["operator2"], "0_1", "siren")
    assert taken.value.review.user == users["operator"]
    reviews = list(Review.objects.filter(alert=alert))
    assert [(r.user.username, r.label, r.note) for r in reviews] == [
        ("op1", "1", "clearly a scream")
    ]
    alert.refresh_from_db()
    assert alert.status == Alert.CONFIRMED


@pytest.mark.django_db
@pytest.mark.parametrize("label", ["0_0", "0_1", "0_2"])
def test_every_dismiss_reason_dismisses(users, device, label):
    alert = make_alert(device)
    assert review_alert(alert.pk, users["operator"], label).status == Alert.DISMISSED
    assert Review.objects.get(alert=alert).label == label


@pytest.mark.django_db
def test_bad_label_or_missing_alert_changes_nothing(users, device):
    alert = make_alert(device)
    with pytest.raises(ReviewError, match="unknown label"):
        review_alert(alert.pk, users["operator"], "2")
    with pytest.raises(ReviewError, match="no alert"):
        review_alert(alert.pk + 1000, users["operator"], "1")
    alert.refresh_from_db()
    assert alert.status == Alert.NEW and not Review.objects.exists()


@pytest.mark.django_db
def test_api_review_returns_the_alert_then_409_naming_the_first_reviewer(client, users, device):
    alert = make_alert(device)
    client.force_login(users["operator"])
    url = f"/api/alerts/{alert.pk}/review/"
    response = client.post(
        url, {"label": "0_0", "note": "cheering"}, content_type="application/json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "dismissed" and body["review"]["label"] == "0_0"
    client.force_login(users["operator2"])
    response = client.post(url, {"label": "1"}, content_type="application/json")
    assert response.status_code == 409
    assert "already dismissed by op1" in response.json()["detail"]
    assert response.json()["review"]["note"] == "cheering"
    bad = client.post(url, {"label": "9"}, content_type="application/json")
    assert bad.status_code == 400
    assert client.post("/api/alerts/999999/review/", {"label": "1"}).status_code == 404


@pytest.mark.django_db
def test_api_filters_by_status_site_time_and_since_id(client, users, device):
    old = make_alert(device, minutes_ago=120)
    mid = make_alert(device, minutes_ago=60, status=Alert.DISMISSED)
    new = make_alert(device, minutes_ago=1)
    other = make_alert(device, minutes_ago=2, site_name="Elsewhere")
    client.force_login(users["operator"])

    def ids(query: str) -> list[int]:
        response = client.get("/api/alerts/" + query)
        assert response.status_code == 200, response.content
        return [a["id"] for a in response.json()]

    assert ids("") == [new.pk, other.pk, mid.pk, old.pk]  # newest first
    assert ids("?status=dismissed") == [mid.pk]
    assert ids("?status=new&site=Central%20Station") == [new.pk, old.pk]
    since = (datetime.now(UTC) - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    assert ids(f"?since={since}") == [new.pk, other.pk, mid.pk]
    assert ids(f"?since_id={old.pk}") == [mid.pk, new.pk, other.pk]  # catch-up: oldest first
    assert ids(f"?since_id={other.pk}") == []
    assert ids("?limit=2") == [new.pk, other.pk]
    assert client.get("/api/alerts/?status=bogus").status_code == 400
    assert client.get("/api/alerts/?since_id=x").status_code == 400
    one = client.get(f"/api/alerts/{new.pk}/").json()
    assert one["device"] == {"id": device.pk, "name": "mic-3a"} and one["review"] is None


@pytest.mark.django_db
def test_openapi_schema_lists_alerts_devices_and_review(client, users):
    client.force_login(users["operator"])
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/alerts/",
        "/api/alerts/{id}/",
        "/api/alerts/{id}/review/",
        "/api/devices/",
        "/api/devices/{id}/disable/",
        "/api/sites/",
    ]:
        assert path in paths, sorted(paths)
    assert "tokenAuth" in response.json()["components"]["securitySchemes"]


@pytest.mark.django_db(transaction=True)
def test_a_verdict_is_changed_then_withdrawn_each_a_new_row_and_broadcast(users, device):
    alert = make_alert(device)
    first = review_alert(alert.pk, users["operator"], "1", "scream")
    receive = listen()
    first_review = Review.objects.get(alert=alert)
    changed = revise_review(alert.pk, users["operator2"], "0_1", first_review.pk, "a siren")
    assert changed.status == Alert.DISMISSED
    event = receive()
    assert event["alert"]["status"] == "dismissed"
    assert event["alert"]["review"]["user"] == "op2"
    assert event["alert"]["review"]["label"] == "0_1"
    second_review = Review.objects.get(pk=event["alert"]["review"]["id"])

    # A revision naming a verdict no longer in force is refused, naming who changed it.
    with pytest.raises(AlreadyReviewed, match="already dismissed by op2"):
        revise_review(alert.pk, users["operator"], "1", first_review.pk)

    withdrawn = revise_review(alert.pk, users["operator"], Review.WITHDRAWN, second_review.pk)
    assert withdrawn.status == Alert.NEW
    assert receive()["alert"]["review"]["label_name"] == "verdict withdrawn"
    history = Review.objects.filter(alert=alert).order_by("created", "id")
    assert [(r.user.username, r.label, r.note) for r in history] == [
        ("op1", "1", "scream"),
        ("op2", "0_1", "a siren"),
        ("op1", "", ""),
    ]
    with pytest.raises(NothingToRevise):  # withdrawn: nothing in force to change
        revise_review(alert.pk, users["operator"], "1", history.last().pk)
    # New again: decided as any new alert.
    assert review_alert(alert.pk, users["operator2"], "0_2").status == Alert.DISMISSED
    assert first.pk == alert.pk


@pytest.mark.django_db
def test_api_changes_and_withdraws_a_verdict_with_the_review_it_replaces(client, users, device):
    alert = make_alert(device)
    client.force_login(users["operator"])
    url = f"/api/alerts/{alert.pk}/review/"
    decided = client.post(url, {"label": "1"}, content_type="application/json").json()
    first = decided["review"]["id"]
    no_replaces = client.post(url, {"label": ""}, content_type="application/json")
    assert no_replaces.status_code == 400
    changed = client.post(
        url,
        {"label": "0_0", "replaces": first, "note": "cheering"},
        content_type="application/json",
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "dismissed"
    stale = client.post(url, {"label": "", "replaces": first}, content_type="application/json")
    assert stale.status_code == 409 and "already dismissed by op1" in stale.json()["detail"]
    undone = client.post(
        url,
        {"label": "", "replaces": changed.json()["review"]["id"]},
        content_type="application/json",
    )
    assert undone.status_code == 200 and undone.json()["status"] == "new"
    again = client.post(url, {"label": "", "replaces": first}, content_type="application/json")
    assert again.status_code == 409 and "no verdict to change" in again.json()["detail"]
    assert Review.objects.filter(alert=alert).count() == 3
    # Each verdict, change and withdrawal is audited, with the verdict it replaced.
    audited = AuditEvent.objects.filter(action="review", object_id=str(alert.pk)).order_by("id")
    assert [(e.actor_name, e.details["label"], e.details.get("replaces")) for e in audited] == [
        ("op1", "1", None),
        ("op1", "0_0", first),
        ("op1", "", changed.json()["review"]["id"]),
    ]
    assert all(e.source_ip == "127.0.0.1" for e in audited)
    # The queue shows who decided, why, and when; the alert page keeps every verdict.
    client.post(url, {"label": "0_2", "note": "traffic"}, content_type="application/json")
    queue = client.get("/alerts/?status=all").content.decode()
    assert "op1" in queue and "traffic" in queue and "anything else" in queue
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert page.count("data-review-id=") == 4 and "verdict withdrawn" in page
