"""Registering versions: the shipped model is version 1 and active after migrate; a corrupt
artifact, other features or a wrong checksum are refused with the reason, and the active
version stays as it was."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuditEvent
from registry import services
from registry.models import ModelVersion
from registry.store import artifact_checksum

from .conftest import artifact_copy


def test_shipped_model_is_version_1_and_active_after_migrate(db, settings):
    v1 = ModelVersion.objects.get(number=1)
    assert v1.source == ModelVersion.SHIPPED
    assert v1.checksum == artifact_checksum(settings.EYESCREAM_MODEL_DIR)
    assert artifact_checksum(v1.model_dir) == v1.checksum  # its own copy in the store
    assert v1.model_dir != settings.EYESCREAM_MODEL_DIR
    assert services.active_version() == v1
    # Migrating again (post_migrate runs after every migrate) registers nothing new.
    assert services.register_shipped() is None
    assert ModelVersion.objects.count() == 1


def test_a_good_artifact_is_registered_into_the_store_and_not_made_active(db, store, tmp_path):
    folder = artifact_copy(tmp_path / "candidate", threshold=0.5)
    checksum = artifact_checksum(folder)
    version = services.register_version(
        folder, expected_checksum=checksum, data_description="threshold 0.5"
    )
    assert version.number == 2 and version.checksum == checksum
    assert version.model_dir == store / "v2"
    assert artifact_checksum(store / "v2") == checksum
    assert version.config["threshold"] == 0.5
    assert services.active_version().number == 1
    assert AuditEvent.objects.filter(action="register", object_id=str(version.pk)).exists()


def refused(folder, match: str, **kwargs) -> None:
    before = (services.active_version().pk, ModelVersion.objects.count())
    with pytest.raises(services.RegistrationError, match=match):
        services.register_version(folder, **kwargs)
    assert (services.active_version().pk, ModelVersion.objects.count()) == before


def test_a_truncated_weights_file_is_refused(db, store, tmp_path):
    folder = artifact_copy(tmp_path / "truncated", threshold=0.5)
    data = (folder / "weights.pt").read_bytes()
    (folder / "weights.pt").write_bytes(data[: len(data) // 2])
    refused(folder, "corrupt artifact: weights.pt cannot be read")
    assert not store.exists() or not any(store.iterdir())  # nothing copied


def test_weights_of_another_network_are_refused(db, store, tmp_path):
    folder = artifact_copy(tmp_path / "other-net", threshold=0.5)
    config = json.loads((folder / "config.json").read_text())
    config["arch_params"]["members"] = 2  # the weights hold three members
    (folder / "config.json").write_text(json.dumps(config))
    refused(folder, "does not fit the A_Depthwise network")


def test_an_unreadable_config_is_refused(db, store, tmp_path):
    folder = artifact_copy(tmp_path / "bad-json")
    (folder / "config.json").write_text("{not json")
    refused(folder, "config.json is not a usable model config")


def test_other_features_are_refused(db, store, tmp_path):
    folder = artifact_copy(tmp_path / "more-mels", n_mels=40)
    refused(folder, r"differs from the active version v1 in n_mels")
    folder = artifact_copy(tmp_path / "hop", hop_length=256)
    refused(folder, r"in hop_length")


def test_a_checksum_mismatch_is_refused(db, store, tmp_path):
    folder = artifact_copy(tmp_path / "candidate", threshold=0.5)
    refused(folder, "checksum mismatch: expected 0123abcd", expected_checksum="0123abcd")


def test_the_same_artifact_twice_is_refused(db, store, settings):
    refused(settings.EYESCREAM_MODEL_DIR, "already registered as version 1")


def test_a_new_shipped_model_becomes_active_only_if_a_shipped_one_was(
    db, store, settings, tmp_path
):
    settings.EYESCREAM_MODEL_DIR = artifact_copy(tmp_path / "shipped-2", threshold=0.6)
    v2 = services.register_shipped()
    assert v2.number == 2 and v2.source == ModelVersion.SHIPPED
    assert services.active_version() == v2  # v1 (shipped) was active: the upgrade takes over

    v3 = services.register_version(artifact_copy(tmp_path / "trained", threshold=0.55))
    services.promote(v3)
    settings.EYESCREAM_MODEL_DIR = artifact_copy(tmp_path / "shipped-3", threshold=0.65)
    v4 = services.register_shipped()
    assert v4.number == 4
    assert services.active_version() == v3  # an admin's choice is not replaced by an upgrade
