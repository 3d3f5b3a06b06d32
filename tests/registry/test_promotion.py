"""Promotion and rollback, globally and per site, each audited."""

from __future__ import annotations

import pytest
from django.test import Client

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


# ---------------------------------------------------------------------- API and page


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_api_promote_and_rollback_for_admins_only(versions, users, site):
    v1, v2, _ = versions
    operator, admin = logged_in(users["operator"]), logged_in(users["admin"])
    assert operator.post("/api/models/2/promote/").status_code == 403
    assert services.active_version() == v1

    response = admin.post("/api/models/2/promote/", REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 200, response.content
    assert response.json()["active"]["number"] == 2
    assert response.json()["active"]["active_for"] == ["global"]
    event = AuditEvent.objects.get(action="promote", object_id=str(v2.pk))
    assert (event.actor_user, event.source_ip) == (users["admin"], "10.0.0.7")

    response = admin.post("/api/models/3/promote/", {"site": site.pk})
    assert response.json() == {"site": site.pk, "active": response.json()["active"]}
    assert services.active_version(site).number == 3
    assert admin.post("/api/models/3/promote/", {"site": site.pk}).status_code == 409
    assert admin.post("/api/models/3/promote/", {"site": 999999}).status_code == 400

    assert admin.post("/api/models/rollback/", {"site": site.pk}).json()["active"]["number"] == 2
    assert admin.post("/api/models/rollback/").json()["active"]["number"] == 1
    listed = {v["number"]: v["active_for"] for v in operator.get("/api/models/").json()}
    assert listed == {3: [], 2: [], 1: ["global"]}


def test_the_models_page_promotes_and_rolls_back(versions, users, site):
    admin = logged_in(users["admin"])
    response = admin.post("/models/3/promote/", {"site": site.pk}, follow=True)
    assert "Version 3 is active at Harbour." in response.content.decode()
    assert services.active_version(site).number == 3
    assert services.active_version().number == 1
    response = admin.post("/models/1/promote/", follow=True)
    assert "Not promoted: version 1 is already active there" in response.content.decode()
    response = admin.post("/models/rollback/", {"site": site.pk}, follow=True)
    assert "Rolled back: version 1 is active at Harbour." in response.content.decode()
    assert AuditEvent.objects.filter(actor_user=users["admin"]).count() == 2
