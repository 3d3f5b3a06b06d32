"""The optional automatic promotion rule: a registered candidate is promoted where its parent
served only when it keeps the fixed pack's recall within the tolerance and lowers false alerts
on the held-back feedback; every other case leaves the active version alone, and says why."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from detection.model_comparison import promotion_rule
from devices.models import Site
from feedback.retrain import apply_promotion_rule, run_options
from registry.services import active_version, register_version
from tests.registry.conftest import artifact_copy


def changes(recall=(0.90, 0.90), false_alerts=(6, 0)) -> dict:
    return {
        "fixed_pack": {
            "recall": {"active": recall[0], "candidate": recall[1]},
            "false_alerts": {"active": 0, "candidate": 0},
        },
        "feedback": {
            "recall": {"active": None, "candidate": None},
            "false_alerts": {"active": false_alerts[0], "candidate": false_alerts[1]},
        },
    }


@pytest.mark.parametrize(
    ("recall", "false_alerts", "promote", "words"),
    [
        ((0.90, 0.90), (6, 0), True, "promoted: fixed-pack recall 0.900 -> 0.900"),
        ((0.90, 0.885), (6, 2), True, "false alerts on the held-back feedback 6 -> 2"),
        ((0.90, 0.87), (6, 0), False, "loses more than 0.02"),
        ((0.90, 0.95), (3, 3), False, "3 -> 3 (must go down)"),
        ((0.90, 0.95), (3, 4), False, "3 -> 4 (must go down)"),
    ],
)
def test_the_rule_weighs_recall_against_false_alerts(recall, false_alerts, promote, words):
    ok, why = promotion_rule(changes(recall, false_alerts), 0.02)
    assert ok is promote and words in why
    assert why.startswith("promoted" if promote else "not promoted")


def test_the_rule_needs_screams_in_the_fixed_pack_and_held_back_feedback():
    no_screams = changes()
    no_screams["fixed_pack"]["recall"] = {"active": None, "candidate": None}
    assert promotion_rule(no_screams, 0.02) == (
        False,
        "not promoted: the fixed pack has no scream file to measure recall on",
    )
    no_feedback = {"fixed_pack": changes()["fixed_pack"]}
    assert promotion_rule(no_feedback, 0.02)[1] == (
        "not promoted: no held-back feedback to count false alerts on"
    )


def test_off_by_default_and_on_by_setting_or_option(settings):
    assert run_options({})[1]["auto_promote"] is False
    assert run_options({"auto_promote": True})[1]["auto_promote"] is True
    settings.EYESCREAM_RETRAIN_AUTO_PROMOTE = True
    assert run_options({})[1]["auto_promote"] is True


@pytest.fixture
def candidate(db, settings, tmp_path):
    settings.EYESCREAM_MODEL_STORE = tmp_path / "store"
    return register_version(artifact_copy(tmp_path / "candidate", threshold=0.7))


def test_a_candidate_that_passes_is_promoted_globally_and_audited(candidate):
    said = []
    shipped = active_version()
    assert shipped.number != candidate.number
    assert apply_promotion_rule(candidate, {"changes": changes()}, None, said.append) is True
    assert active_version().number == candidate.number
    assert said == [f"version {candidate.number} " + promotion_rule(changes(), 0.02)[1]]
    event = AuditEvent.objects.filter(action="promote").latest("pk")
    assert event.object_id == str(candidate.pk) or str(candidate.number) in str(event.details)


def test_a_site_candidate_is_promoted_for_that_site_only(candidate):
    yard = Site.objects.create(name="Yard")
    shipped = active_version()
    assert apply_promotion_rule(candidate, {"changes": changes()}, "Yard", print) is True
    assert active_version(yard).number == candidate.number
    assert active_version().number == shipped.number


def test_a_candidate_that_fails_leaves_the_active_version(candidate, settings):
    shipped = active_version()
    said = []
    worse = {"changes": changes(recall=(0.90, 0.80))}
    assert apply_promotion_rule(candidate, worse, None, said.append) is False
    assert active_version().number == shipped.number
    assert "not promoted: fixed-pack recall 0.900 -> 0.800" in said[0]
    settings.EYESCREAM_RETRAIN_RECALL_TOLERANCE = 0.15  # a wider tolerance lets it through
    assert apply_promotion_rule(candidate, worse, None, said.append) is True
    assert active_version().number == candidate.number
