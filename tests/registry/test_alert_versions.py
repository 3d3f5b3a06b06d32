"""An alert's picture is drawn with the threshold of the version that scored it."""

from __future__ import annotations

from pathlib import Path

from alerts.images import active_feature_config
from alerts.tasks import model_dir_of
from registry import services
from tests.dashboard.conftest import make_alert

from .conftest import artifact_copy


def test_the_picture_uses_the_scoring_versions_folder(device, store, settings, tmp_path):
    version = services.register_version(artifact_copy(tmp_path / "v2", threshold=0.55))
    scored_by_2 = make_alert(device, model_number=version.number)
    assert model_dir_of(scored_by_2) == version.model_dir
    assert active_feature_config(model_dir_of(scored_by_2))[1] == 0.55
    older = make_alert(device, model_number=None)  # from before the registry
    assert model_dir_of(older) == Path(settings.EYESCREAM_MODEL_DIR)
    unknown = make_alert(device, model_number=77)  # its files are not in this store
    assert model_dir_of(unknown) == Path(settings.EYESCREAM_MODEL_DIR)
