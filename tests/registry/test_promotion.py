"""Promotion and rollback, globally and per site, each audited."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from registry import services
from registry.models import ModelVersion

from .conftest import artifact_copy


@pytest.fixture
def versions(db, store, tmp_path):
    v1 = ModelVersion.objects.get(number=1)
    v2 = services.register_version(artifact_copy(tmp_path / "a", threshold=0.5))
    v3 = services.register_version(artifact_copy(tmp_path / "b", threshold=0.6))
    return v1, v2, v3


def test_promote_and_roll_back_globally(versions, django_user_model):
    v1, v2, v3 = versions
    admin = django_user_model.objects.create_user("boss")
    services.promote(v2, user=admin)
    assert services.active_version() == v2
    v2.refresh_from_db()
    assert v2.promoted_by == admin and v2.promoted_at is not None
    services.promote(v3, user=admin)
    assert services.active_version() == v3
    assert services.rollback(user=admin) == v2
    assert services.rollback(user=admin) == v1  # a second rollback goes one step further
    with pytest.raises(services.PromotionError, match="no version before it"):
        services.rollback(user=admin)
    assert services.active_version() == v1
    actions = list(
        AuditEvent.objects.filter(actor_user=admin).order_by("id").values_list("action", "details")
    )
    assert actions == [
        ("promote", {"site": None, "previous": 1}),
        ("promote", {"site": None, "previous": 2}),
        ("rollback", {"site": None, "from": 3, "to": 2}),
        ("rollback", {"site": None, "from": 2, "to": 1}),
    ]


def test_promoting_the_active_version_again_is_refused(versions):
    with pytest.raises(services.PromotionError, match="already active"):
        services.promote(versions[0])


def test_a_site_override_and_its_rollback(versions, site):
    v1, v2, v3 = versions
    services.promote(v2, site=site)
    assert services.active_version(site) == v2
    assert services.active_version() == v1  # others keep the global version
    services.promote(v3)
    assert services.active_version(site) == v2  # the override wins over the global choice
    assert services.active_choices() == {None: v3, site.pk: v2}
    assert services.rollback(site=site) == v3  # no override any more: the global version
    assert services.active_choices() == {None: v3}
    with pytest.raises(services.PromotionError, match="follows the global version"):
        services.rollback(site=site)
    assert AuditEvent.objects.filter(action="promote", details__site=site.pk).count() == 1
    assert AuditEvent.objects.filter(action="rollback", details__site=site.pk).count() == 1


def test_a_version_whose_files_are_gone_is_not_promoted(versions):
    v2 = versions[1]
    (v2.model_dir / "weights.pt").unlink()
    with pytest.raises(services.PromotionError, match="files are missing"):
        services.promote(v2)
    assert services.active_version().number == 1
