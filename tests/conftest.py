"""Shared test fixtures: where the real recordings are."""

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
