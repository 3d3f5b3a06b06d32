"""``manage.py retrain``: says clearly when there is nothing to learn from; on real recordings
it trains a candidate, compares it with the active model and writes the report."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.reviews import review_alert
from detection.artifacts import load_model

from .conftest import NOT_SCREAMS, clip, make_alert

pytestmark = pytest.mark.django_db


def test_no_reviewed_alert_is_said_clearly(media, settings, tmp_path, real_v1):
    settings.EYESCREAM_RETRAIN_DIR = tmp_path / "runs"
    with pytest.raises(CommandError, match="no feedback to retrain on: no reviewed alert"):
        call_command("retrain", "--no-register", "--no-progress")


def test_an_unreadable_feedback_is_no_feedback(reviewed, settings, tmp_path):
    settings.EYESCREAM_RETRAIN_DIR = tmp_path / "runs"
    from .conftest import snippet_file

    for key in ("scream", "0_0", "0_1", "0_2"):
        snippet_file(reviewed[key]).unlink()
    with pytest.raises(CommandError, match=r"no reviewed alert with a readable snippet \(4 left"):
        call_command("retrain", "--no-register", "--no-progress")


def test_all_feedback_held_back_is_said_clearly(reviewed, settings, tmp_path):
    settings.EYESCREAM_RETRAIN_DIR = tmp_path / "runs"
    with pytest.raises(CommandError, match="held back for evaluation"):
        call_command("retrain", "--no-register", "--no-progress", "--holdout-days", "30")


def test_bad_options_are_refused(reviewed, settings, tmp_path):
    settings.EYESCREAM_RETRAIN_DIR = tmp_path / "runs"
    with pytest.raises(CommandError, match="epochs: at least 1"):
        call_command("retrain", "--no-register", "--epochs", "0")


@pytest.mark.slow
def test_retrain_on_real_feedback_writes_a_candidate_and_its_comparison(
    reviewed, people, settings, tmp_path, real_v1
):
    settings.EYESCREAM_RETRAIN_DIR = tmp_path / "runs"
    # Newer feedback at the Yard, so that it is held back; the older trains.
    yard = reviewed["scream"].device
    late = make_alert(
        yard,
        clip(real_v1, NOT_SCREAMS["0_2"], 5.0, 2.0),
        reviewed["0_2"].started_at + timedelta(days=20),
    )
    review_alert(late.pk, people["operator"], "0_2")
    from alerts.models import Review

    Review.objects.update(created=reviewed["scream"].started_at)
    late.reviews.update(created=late.started_at)
    call_command(
        "retrain",
        "--no-register",
        "--no-progress",
        "--epochs=1",
        "--max-files=16",
        "--max-eval-files=12",
        "--holdout-days=3",
        f"--cache-dir={tmp_path / 'cache'}",
        "--name=cand",
    )
    [run] = list((tmp_path / "runs").iterdir())
    candidate = load_model(run / "candidate")
    active = load_model(settings.EYESCREAM_MODEL_DIR)
    assert candidate.version != active.version
    assert candidate.config["features"] == active.config["features"]
    assert candidate.config["training"]["parent"] == active.version
    metrics = json.loads((run / "candidate" / "metrics.json").read_text())
    data = metrics["data"]
    # Held back: each site's verdicts within 3 days of its newest -- the late one at the Yard,
    # both of the Depot's; the Yard's older two train.
    assert data["feedback_files"] == 2 and data["heldback_feedback_files"] == 3
    assert data["base_files"] == 16 and data["fixed_files"] == 12
    for key in ("fixed_pack", "feedback"):
        assert metrics[key]["files"] == metrics["active_on_same_data"][key]["files"]
    assert set(metrics["feedback"]["by_site"]) == {"Yard", "Depot"}
    assert set(metrics["feedback"]["by_reason"]) == {"0_0", "0_2"}
    assert "recall" in metrics["changes"]["fixed_pack"]
    report = (run / "report" / "report.md").read_text()
    assert "## Fixed pack" in report and "## Held-back feedback" in report
    assert (run / "report" / "confusion_fixed_pack_candidate.png").is_file()
    assert (run / "report" / "pr_fixed_pack_candidate.png").is_file()
    # The sources of the fixed pack were never trained on.
    fixed = set(data["fixed_sources"])
    assert fixed and not fixed & set(data["base_sources"])


def test_an_unknown_job_is_said_clearly(db):
    with pytest.raises(CommandError, match="no retraining job 999"):
        call_command("retrain", "--job", "999")
