"""A site's and a device's sensitivity and decision overrides: validated where they are set
(model, /manage/ form, provisioning API), and applied to the stream's live decision on top of
the active model's defaults: the site's decision, the device's, then one sensitivity (the
device's, else the site's)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from detection.artifact_config import read_model_config
from detection.decision import DecisionConfig
from detection.scoring import decision_defaults
from live.scoring_setup import decision_overrides, with_overrides
from tests.dashboard.conftest import device, users  # noqa: F401 - fixtures

SHIPPED = Path(__file__).resolve().parents[2] / "detection" / "shipped" / "default"


def shipped_decision() -> DecisionConfig:
    return decision_defaults(read_model_config(SHIPPED))


def live_decision(device_id: int) -> DecisionConfig:
    return with_overrides(shipped_decision(), decision_overrides(device_id))


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("sensitivity", 1.5, "less than or equal to 1.0"),
        ("sensitivity", -0.1, "greater than or equal to 0.0"),
        ("decision", {"loudness": 3}, "unknown"),
        ("decision", {"min_duration_s": -1}, "min_duration_s"),
        ("decision", {"on_threshold": 0.4, "off_threshold": 0.6}, "off_threshold"),
        ("decision", {"sensitivity": 0.3}, "in its own field"),
        ("decision", [0.3], "give an object"),
    ],
)
def test_bad_settings_are_refused_in_words(device, field, value, words):  # noqa: F811
    setattr(device, field, value)
    with pytest.raises(ValidationError, match=words):
        device.full_clean()


def test_no_settings_keep_the_models_decision(device):  # noqa: F811
    assert live_decision(device.pk) == shipped_decision()


def test_the_devices_sensitivity_wins_over_the_sites_and_decisions_combine(device):  # noqa: F811
    site = device.location.site
    site.sensitivity, site.decision = 0.1, {"min_duration_s": 0.3, "smoothing_windows": 3}
    site.save()
    strict = live_decision(device.pk)
    model = shipped_decision()
    assert strict.on_threshold > model.on_threshold and strict.off_threshold > model.off_threshold
    assert strict.min_duration_s == 0.3 and strict.smoothing_windows == 3
    device.sensitivity, device.decision = 0.9, {"smoothing_windows": 2}
    device.save()
    eager = live_decision(device.pk)
    assert eager.on_threshold < model.on_threshold  # the device's 0.9, not the site's 0.1
    assert eager.on_threshold == pytest.approx(model.with_sensitivity(0.9).on_threshold)
    assert eager.min_duration_s == 0.3 and eager.smoothing_windows == 2


def test_an_override_that_does_not_fit_the_model_is_left_out_not_fatal(device, caplog):  # noqa: F811
    # Saved before a promotion, say: an off threshold above this model's on threshold (0.73).
    site = device.location.site
    type(site).objects.filter(pk=site.pk).update(decision={"off_threshold": 0.99})
    with caplog.at_level(logging.WARNING):
        decision = live_decision(device.pk)
    assert decision == shipped_decision()
    assert "decision override {'off_threshold': 0.99} left out" in caplog.text


def test_the_provisioning_api_sets_and_checks_them(users, device):  # noqa: F811
    api = APIClient()
    api.force_authenticate(users["admin"])
    ok = api.patch(
        f"/api/devices/{device.pk}/",
        {"sensitivity": 0.3, "decision": {"min_duration_s": 0.3}},
        format="json",
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["sensitivity"] == 0.3 and ok.json()["decision"] == {"min_duration_s": 0.3}
    bad = api.patch(f"/api/devices/{device.pk}/", {"decision": {"loudness": 3}}, format="json")
    assert bad.status_code == 400 and "unknown" in str(bad.json()["decision"])
    bad = api.patch(f"/api/sites/{device.location.site.pk}/", {"sensitivity": 2}, format="json")
    assert bad.status_code == 400 and "sensitivity" in bad.json()
    device.refresh_from_db()
    assert device.sensitivity == 0.3 and live_decision(device.pk).min_duration_s == 0.3
