"""The retrain button's view: admins only; it records a queued RetrainJob with the options
asked and queues the task after commit; bad numbers and a job already running are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.registry_link import JobBusy, new_job
from feedback.retrain import JobProgress
from registry.models import RetrainJob

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/feedback/retrain/"


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def said(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_an_admin_queues_a_job_with_the_options_asked(
    client, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = login(client, people["admin"]).post(
            URL, {"epochs": "2", "holdout_days": "3.5", "from_scratch": "on", "site": "Yard"}
        )
    assert response.status_code == 302 and response["Location"] == "/models/"
    job = RetrainJob.objects.get()
    assert job.status == "queued" and job.requested_by == people["admin"]
    assert job.options == {"epochs": 2, "holdout_days": 3.5, "from_scratch": True, "site": "Yard"}
    assert len(callbacks) == 1  # the task is sent once the job row is committed
    assert f"retraining job {job.pk} queued" in said(response)
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(action="retrain", object_id=str(job.pk)).exists()


def test_bad_numbers_start_nothing(client, people):
    response = login(client, people["admin"]).post(URL, {"epochs": "0"})
    assert response.status_code == 302
    assert "retraining not started: epochs: from 1 to 200, got 0" in said(response)
    assert not RetrainJob.objects.exists()


def test_one_job_at_a_time(client, people):
    running = RetrainJob.objects.create(status="running", options={})
    response = login(client, people["admin"]).post(URL)
    assert f"retraining not started: job {running.pk} is running" in said(response)
    assert RetrainJob.objects.count() == 1


@pytest.mark.parametrize("who", ["operator", "plain"])
def test_others_are_refused(client, people, who):
    assert login(client, people[who]).post(URL).status_code == 403
    assert not RetrainJob.objects.exists()


def test_the_models_page_has_the_retrain_button(client, people):
    page = login(client, people["admin"]).get("/models/").content.decode()
    assert 'action="/feedback/retrain/"' in page


def test_a_sites_retraining_starts_from_the_version_serving_that_site(settings, tmp_path, db):
    from devices.models import Site
    from feedback.registry_link import active_model_dir
    from registry.services import promote, register_version
    from tests.registry.conftest import artifact_copy

    settings.EYESCREAM_MODEL_STORE = tmp_path / "store"
    harbour = Site.objects.create(name="Harbour")
    one = register_version(artifact_copy(tmp_path / "a", threshold=0.8))
    two = register_version(artifact_copy(tmp_path / "b", threshold=0.7))
    promote(one)
    promote(two, site=harbour)
    assert active_model_dir() == one.model_dir
    assert active_model_dir("Harbour") == two.model_dir
    assert active_model_dir("Elsewhere") == one.model_dir


def test_two_unfinished_jobs_cannot_exist_even_when_asked_at_the_same_moment(people):
    first = new_job({}, people["admin"])
    with pytest.raises(JobBusy, match=f"job {first.pk} is queued"):
        new_job({}, people["admin"])
    # Past the check, as a second request at the same moment would be: the database refuses.
    with pytest.raises(IntegrityError), transaction.atomic():
        RetrainJob.objects.create(status="queued", options={})
    first.end("done", "candidate version 2 registered")
    assert new_job({}, people["admin"]).status == "queued"  # an ended job blocks nothing


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("queued", "never started: no Celery worker took it"),
        ("running", "its process stopped reporting progress (killed with its worker?)"),
    ],
)
def test_a_silent_job_is_ended_as_failed_and_blocks_no_more(client, people, settings, status, why):
    settings.EYESCREAM_RETRAIN_STALE_S = 600
    dead = RetrainJob.objects.create(status=status, options={})
    RetrainJob.objects.filter(pk=dead.pk).update(updated=timezone.now() - timedelta(minutes=11))
    response = login(client, people["admin"]).post(URL)
    assert "retraining job" in said(response) and "queued" in said(response)
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.unfinished is None and dead.finished is not None
    assert dead.message == f"failed after 10 min without a sign of life: {why}"


def test_a_job_that_reports_progress_is_not_taken_for_dead(people, settings):
    settings.EYESCREAM_RETRAIN_STALE_S = 600
    job = new_job({}, people["admin"])
    RetrainJob.objects.filter(pk=job.pk).update(updated=timezone.now() - timedelta(minutes=11))
    JobProgress(job)(0.5, "training")  # a sign of life
    with pytest.raises(JobBusy):
        new_job({}, people["admin"])
