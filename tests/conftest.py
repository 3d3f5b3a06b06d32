"""Shared test fixtures: where the real recordings are, and a test database like the real one."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("EYESCREAM_DATASETS", REPO.parent / "shared" / "datasets"))


def require_dataset(name: str = "real-v1") -> Path:
    """The data set folder, or a clear skip (a failure under EYESCREAM_REQUIRE_DATA=1)."""
    path = DATASETS / name
    if not (path / "manifest.csv").is_file():
        message = f"real recordings not found at {path} (set EYESCREAM_DATASETS)"
        if os.environ.get("EYESCREAM_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def real_v1() -> Path:
    return require_dataset("real-v1")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Embedded mode's test database is a file, as in production, not SQLite's in-memory one.

    In memory, threads share one cache, and a writer that meets another thread's write lock
    fails at once with "database table is locked"; a file waits for the lock (the settings'
    timeout and IMMEDIATE transactions), as the served product does. Tests where the picture
    thread writes while the live path opens alerts must see the product's behaviour.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        test = database.setdefault("TEST", {})
        test["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")
