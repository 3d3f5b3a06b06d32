"""Artifacts for registry tests: copies of the shipped model, changed in one way or another."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from devices.models import Site
from tests.dashboard import conftest as dashboard

users = dashboard.users  # the roles' users and a placed device, as the dashboard tests have
device = dashboard.device


def artifact_copy(folder: Path, *, threshold: float | None = None, **features) -> Path:
    """A copy of the shipped artifact (config.json and weights.pt), with a changed threshold or
    feature parameters."""
    folder.mkdir(parents=True)
    source = Path(settings.EYESCREAM_MODEL_DIR)
    for name in ("weights.pt", "config.json"):
        shutil.copy2(source / name, folder / name)
    config = json.loads((folder / "config.json").read_text())
    if threshold is not None:
        config["threshold"] = threshold
        config["decision"]["on_threshold"] = threshold
    config["features"].update(features)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


@pytest.fixture
def store(settings, tmp_path):
    settings.EYESCREAM_MODEL_STORE = tmp_path / "store"
    return settings.EYESCREAM_MODEL_STORE


@pytest.fixture
def site(db):
    return Site.objects.create(name="Harbour")
