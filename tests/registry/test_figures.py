"""The figures from verdicts, on hand-made rows (pure functions), then from the database
through the API and the models page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client

from alerts.models import Review
from registry.figures import AlertRow, daily, summarize
from tests.dashboard.conftest import make_alert

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def row(verdict=None, *, site="A", device="mic-1", version=1, day=0, detect_s=0.5, review_s=None):
    started = T0 + timedelta(days=day)
    created = started + timedelta(seconds=detect_s)
    first = created + timedelta(seconds=review_s) if review_s is not None else None
    return AlertRow(site, device, version, started, created, verdict, first)


def test_summary_of_hand_made_rows():
    rows = [
        row("1", detect_s=0.4, review_s=60),
        row("1", detect_s=0.6, review_s=120),
        row("0_1", detect_s=1.0, review_s=30),
        row("0_0", detect_s=2.0, review_s=600),
        row(None, detect_s=0.5),  # not reviewed yet
    ]
    figures = summarize(rows, days=10, devices=2)
    assert figures["alerts"] == 5 and figures["reviewed"] == 4 and figures["backlog"] == 1
    assert figures["confirmed"] == 2 and figures["dismissed"] == 2
    assert figures["precision"] == 0.5
    assert figures["alerts_per_day"] == 0.5
    assert figures["false_alerts_per_device_day"] == 0.1  # 2 dismissed / (2 devices x 10 days)
    assert figures["detection_latency_s"]["median"] == 0.6
    assert figures["detection_latency_s"]["p95"] == pytest.approx(1.8)  # numpy's linear rule
    assert figures["review_latency_s"]["median"] == 90.0
    assert figures["review_latency_s"]["p95"] == pytest.approx(528.0)


def test_nothing_reviewed_has_no_precision_and_no_latencies():
    figures = summarize([row(None)], days=1, devices=1)
    assert figures["precision"] is None and figures["backlog"] == 1
    assert figures["review_latency_s"] == {"median": None, "p95": None}
    assert summarize([], days=7, devices=0)["false_alerts_per_device_day"] is None
    with pytest.raises(ValueError, match="longer than 0 days"):
        summarize([], days=0, devices=1)


def test_daily_series_counts_each_day_and_fills_quiet_days():
    rows = [row("1", day=0), row("0_2", day=0), row("0_2", day=2), row(None, day=2)]
    series = daily(rows, date(2026, 12, 1), date(2026, 12, 3))
    assert [d["day"] for d in series] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert [d["alerts"] for d in series] == [2, 0, 2]
    assert [d["precision"] for d in series] == [0.5, None, 0.0]


# ---------------------------------------------------------------------- from the database


@pytest.fixture
def reviewed(users, device):
    """Three alerts of version 1 (confirmed, dismissed then confirmed, withdrawn) and one of
    version 2 (dismissed), one unreviewed of version 2."""
    op = users["operator"]
    alerts = [
        make_alert(device, minutes_ago=m, model_number=n)
        for m, n in ((50, 1), (40, 1), (30, 1), (20, 2), (10, 2))
    ]
    Review.objects.create(alert=alerts[0], user=op, label="1")
    Review.objects.create(alert=alerts[1], user=op, label="0_1")
    Review.objects.create(alert=alerts[1], user=op, label="1")  # changed: newest counts
    Review.objects.create(alert=alerts[2], user=op, label="0_2")
    Review.objects.create(alert=alerts[2], user=op, label=Review.WITHDRAWN)  # no verdict now
    Review.objects.create(alert=alerts[3], user=op, label="0_0")
    return alerts


def api(user, path: str):
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def test_figures_api_per_version_and_site(users, reviewed, device):
    data = api(users["operator"], "/api/models/figures/?days=7")
    overall = data["overall"]
    assert (overall["alerts"], overall["reviewed"], overall["backlog"]) == (5, 3, 2)
    assert overall["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert data["by_version"]["1"]["precision"] == 1.0
    assert data["by_version"]["2"]["precision"] == 0.0
    assert data["by_version"]["2"]["false_alerts_per_device_day"] == pytest.approx(1 / 7, abs=1e-3)
    assert set(data["by_site"]) == {device.location.site.name}
    assert overall["review_latency_s"]["median"] is not None

    only_v2 = api(users["admin"], "/api/models/figures/?version=2")
    assert only_v2["overall"]["alerts"] == 2
    other_site = api(users["admin"], f"/api/models/figures/?site={device.location.site_id + 99}")
    assert other_site["overall"]["alerts"] == 0


def test_models_page_shows_versions_and_figures(users, reviewed):
    client = Client()
    client.force_login(users["admin"])
    page = client.get("/models/").content.decode()
    assert 'id="version-table"' in page and 'data-number="1"' in page
    assert 'id="figure-table"' in page and "data:image/png;base64," in page
    assert "version 1" in page


def test_a_versions_report_and_its_pictures(users):
    client = Client()
    client.force_login(users["admin"])
    page = client.get("/models/1/report/").content.decode()
    assert 'id="report-text"' in page and "/models/1/report/pr_curve.png" in page
    picture = client.get("/models/1/report/pr_curve.png")
    assert picture.status_code == 200 and b"".join(picture.streaming_content)[:4] == b"\x89PNG"
    assert client.get("/models/1/report/config.json").status_code == 404
    assert client.get("/models/99/report/").status_code == 404
