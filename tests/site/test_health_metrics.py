"""/healthz, /readyz and /metrics in the embedded mode (the test client, the test database),
and the JSON-lines log format."""

import json
import logging
from pathlib import Path

import pytest
from django.utils import timezone

from alerts.models import Alert
from devices.models import Device, Location, Site
from eyescream_site import health_views, readiness
from eyescream_site.log_format import JsonLinesFormatter
from registry import services
from registry.models import Activation
from tests.registry.conftest import artifact_copy


@pytest.fixture(autouse=True)
def fresh_readiness(monkeypatch):
    """Each test's /readyz runs its checks (no answer shared with an earlier test)."""
    monkeypatch.setattr(readiness, "CACHE_S", 0.0)
    monkeypatch.setattr(health_views, "_last_reasons", [])


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in /metrics:\n{text}")


def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_with_the_database_and_the_model(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready" and body["reasons"] == []
    assert set(body["checks"]) == {"database", "model", "scoring"}
    assert all(check["ok"] for check in body["checks"].values())


def assert_not_ready_for_the_model(client) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not ready"
    assert not body["checks"]["model"]["ok"] and not body["checks"]["scoring"]["ok"]
    assert any(
        reason.startswith("model: ") and "config.json" in reason for reason in body["reasons"]
    )


@pytest.mark.django_db(transaction=True)  # /readyz reads in a thread of its own
def test_readyz_names_the_active_version_and_says_503_when_its_files_are_gone(
    client, settings, tmp_path
):
    assert client.get("/readyz").json()["checks"]["model"]["detail"].startswith("version 1 (")
    settings.EYESCREAM_MODEL_STORE = tmp_path / "store"
    version = services.register_version(artifact_copy(tmp_path / "v2", threshold=0.5))
    services.promote(version)
    assert client.get("/readyz").json()["checks"]["model"]["detail"].startswith("version 2 (")
    (version.model_dir / "config.json").unlink()
    assert_not_ready_for_the_model(client)


@pytest.mark.django_db(transaction=True)
def test_readyz_says_503_and_why_when_the_model_is_missing(client, settings, tmp_path):
    Activation.objects.all().delete()  # an empty registry: the shipped folder is checked
    settings.EYESCREAM_MODEL_DIR = Path(tmp_path)
    assert_not_ready_for_the_model(client)


@pytest.mark.django_db(transaction=True)  # /readyz reads in a thread of its own
def test_readyz_logs_a_change_of_state_once_and_no_request_error(
    client, settings, tmp_path, caplog
):
    Activation.objects.all().delete()  # an empty registry: the shipped folder is checked
    settings.EYESCREAM_MODEL_DIR = Path(tmp_path)
    with caplog.at_level(logging.INFO):
        codes = [client.get("/readyz").status_code for _ in range(3)]
    assert codes == [503, 503, 503]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("not ready: model: ")
    settings.EYESCREAM_MODEL_DIR = Path(__file__).parents[2] / "detection/shipped/default"
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert client.get("/readyz").status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name.endswith("health_views")] == [
        "ready again"
    ]


@pytest.mark.django_db
def test_metrics_only_from_loopback_by_default(client):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_metrics_with_a_token_count_devices_and_alerts_by_status(client, settings):
    settings.EYESCREAM_METRICS_TOKEN = "scrape-secret"
    settings.EYESCREAM_METRICS_NETWORKS = []
    site = Site.objects.create(name="Depot", latitude=48.1, longitude=11.5)
    spot = Location.objects.create(site=site, name="Gate")
    mic = Device.objects.create(location=spot, name="mic", connection_state=Device.ONLINE)
    Device.objects.create(location=spot, name="quiet")
    for status in (Alert.NEW, Alert.NEW, Alert.CONFIRMED):
        Alert.objects.create(
            device=mic, started_at=timezone.now(), peak_score=0.9, mean_score=0.8, status=status
        )

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    wrong = {"HTTP_AUTHORIZATION": "Bearer nope"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **wrong).status_code == 403
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-secret"}
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", **auth)
    assert response.status_code == 200
    text = response.content.decode()
    assert metric(text, 'eyescream_alerts{status="new"}') == 2
    assert metric(text, 'eyescream_alerts{status="confirmed"}') == 1
    assert metric(text, 'eyescream_alerts{status="dismissed"}') == 0
    assert metric(text, 'eyescream_devices{state="online"}') == 1
    assert metric(text, 'eyescream_devices{state="offline"}') == 1
    for family in (
        "eyescream_frames_accepted_total",
        "eyescream_windows_scored_total",
        "eyescream_scoring_batch_windows_bucket",
        "eyescream_detection_latency_seconds_bucket",
        "eyescream_celery_task_failures",
    ):
        assert family in text, family


def test_json_lines_carry_ids_and_mask_token_shaped_text():
    record = logging.LogRecord("live.ingest", logging.INFO, __file__, 1, "got %s", ("x",), None)
    record.device_id, record.site_id = 7, 3
    record.msg, record.args = "token %s seen", ("esd_" + "A" * 43,)
    line = json.loads(JsonLinesFormatter().format(record))
    assert line["device_id"] == 7 and line["site_id"] == 3 and "alert_id" not in line
    assert line["level"] == "INFO" and line["logger"] == "live.ingest"
    assert "esd_" not in line["message"] and "[masked]" in line["message"]


@pytest.mark.django_db
def test_the_sample_grafana_dashboard_uses_only_families_metrics_has(client, settings):
    import re

    settings.REDIS_URL = ""
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    served = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    served |= {f"{name}_total" for name in served} | {f"{name}_bucket" for name in served}
    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"eyescream_[a-z_]+", expr)}
    scaled_only = {"eyescream_scoring_workers_alive", "eyescream_channel_queue_depth"}
    assert used and used <= served | scaled_only, used - served
