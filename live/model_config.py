"""The feature configuration and window stride live streams use: those of the active version."""

from __future__ import annotations

import logging
from functools import cache

from django.conf import settings

from detection.artifact_config import ArtifactError, read_model_config
from detection.features import FeatureConfig

log = logging.getLogger(__name__)

FALLBACK_STRIDE_S = 0.1


def stream_feature_config(model_dir=None) -> tuple[FeatureConfig, float]:
    """``(FeatureConfig, stride_s)`` from the ``config.json`` of ``model_dir`` (the stream's
    active version, ``model_choice``; default ``EYESCREAM_MODEL_DIR``).

    Without a model artifact (a fresh checkout before a model is trained) the default feature
    configuration and a 0.1 s stride are used, with one warning per process.
    """
    try:
        config = read_model_config(model_dir or settings.EYESCREAM_MODEL_DIR)
    except ArtifactError as exc:
        _warn_fallback(str(exc))
        return FeatureConfig(), FALLBACK_STRIDE_S
    return FeatureConfig.from_dict(config["features"]), float(config["stride_s"])


@cache
def _warn_fallback(reason: str) -> None:
    log.warning("live streams use the default features and a 0.1 s stride: %s", reason)
