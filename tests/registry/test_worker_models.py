"""A scoring request names the version's folder; the worker serves only folders of the model
store (or the shipped model), never an arbitrary path from a message."""

from __future__ import annotations

import pytest

from live.scoring_worker import scorer_for
from registry import services

from .conftest import artifact_copy


def test_the_worker_serves_store_folders_and_refuses_others(db, store, settings, tmp_path):
    version = services.register_version(artifact_copy(tmp_path / "v2", threshold=0.5))
    assert scorer_for(str(version.model_dir)).model_dir == version.model_dir
    assert scorer_for(None).model_dir == settings.EYESCREAM_MODEL_DIR.resolve()
    with pytest.raises(ValueError, match="is not in the model store"):
        scorer_for(str(tmp_path / "v2"))  # the registered artifact's source, not the store
    with pytest.raises(ValueError, match="is not in the model store"):
        scorer_for(str(store / ".." / "elsewhere"))
