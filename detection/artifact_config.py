"""A model artifact's ``config.json``, its version digest, and its network's weights.

Importing this module imports no torch: the web, the registry, the readiness check and every
``manage.py`` command read a model's configuration, and most of them never score audio (torch
takes more than a second to import). ``load_network``, which the registry runs to check a
version before registering it, imports torch when it is called. The layout of an artifact
folder and the scoring model are ``detection.artifacts``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .features import FeatureConfig
from .first_stage import FirstStage
from .fusion import SecondStageConfig

FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
REQUIRED_KEYS = ("architecture", "features", "stride_s", "threshold")


class ArtifactError(Exception):
    """An artifact folder is missing, incomplete or inconsistent."""


def read_model_config(path: str | os.PathLike) -> dict:
    """Read and validate ``config.json`` of an artifact folder (the network is not loaded)."""
    config_path = Path(path) / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"no model artifact at {path}: {CONFIG_FILE} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{config_path} is not valid JSON: {exc}") from exc
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ArtifactError(f"{config_path} lacks {', '.join(missing)}")
    FeatureConfig.from_dict(config["features"])  # raises on unknown parameters
    threshold = config["threshold"]
    if not 0.0 < float(threshold) < 1.0:
        raise ArtifactError(f"{config_path}: threshold {threshold} is not in (0, 1)")
    if "second_stage" in config:
        try:
            SecondStageConfig.from_dict(config["second_stage"])
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{config_path}: second_stage: {exc}") from exc
    if config.get("first_stage") is not None:
        try:
            FirstStage.from_dict(config["first_stage"])
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{config_path}: first_stage: {exc}") from exc
    return config


def feature_config(config: dict) -> FeatureConfig:
    return FeatureConfig.from_dict(config["features"])


def weights_digest(path: str | os.PathLike) -> str:
    """Short content hash of the weights: the model version shown on alerts."""
    digest = hashlib.sha256(Path(path, WEIGHTS_FILE).read_bytes()).hexdigest()
    return digest[:12]


def load_network(path: str | os.PathLike, config: dict):
    """The network ``config`` describes with the folder's weights (``ArtifactError``, naming the
    file but not the folder, when they are missing, unreadable or do not fit it); in training
    mode, as built."""
    import torch

    from .networks import build_network

    features = feature_config(config)
    net = build_network(
        config["architecture"],
        n_mels=features.n_mels,
        n_frames=features.window_columns,
        **config.get("arch_params", {}),
    )
    weights = Path(path) / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{WEIGHTS_FILE} is missing")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, not a state dict
        text = str(exc).strip().splitlines()[0][:200]
        raise ArtifactError(
            f"{WEIGHTS_FILE} cannot be read ({type(exc).__name__}: {text})"
        ) from exc
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise ArtifactError(
            f"{WEIGHTS_FILE} does not fit the {config['architecture']} network: {first}"
        ) from exc
    return net
