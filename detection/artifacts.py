"""Model artifacts: a folder with everything needed to score audio exactly as in training.

Layout of an artifact folder::

    config.json    architecture, its parameters, every feature parameter, stride, threshold,
                   decision defaults, how it was trained; optionally ``second_stage`` (YAMNet's
                   share and gate, ``detection.second_stage``): threshold and decision then
                   apply to the fused score; optionally ``first_stage`` (an ensemble's
                   first member's logit floor, ``detection.first_stage``; an ensemble without
                   it gets ``FirstStage()``, ``null`` turns it off)
    weights.pt     the network's state_dict
    metrics.json   cross-validation / evaluation figures (optional)
    report.md      human-readable report, with images beside it (optional)

``load_model`` rebuilds the network from ``config.json`` alone, so the features used when
serving can only be the ones the model was trained with.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifact_config import (
    CONFIG_FILE,
    FORMAT,
    METRICS_FILE,
    REQUIRED_KEYS,
    WEIGHTS_FILE,
    ArtifactError,
    feature_config,
    load_network,
    read_model_config,
    weights_digest,
)
from .features import FeatureConfig, normalize_windows, prepare
from .first_stage import FirstStage, applies_to, gated_probabilities
from .fusion import SecondStageConfig
from .second_stage import SecondStage
from .yamnet_weights import load_yamnet


def save_artifact(
    path: str | os.PathLike,
    net,
    config: dict,
    metrics: dict | None = None,
    extra_files: dict[str, bytes | str] | None = None,
) -> Path:
    """Write an artifact folder atomically (a temporary sibling folder renamed into place)."""
    import torch

    path = Path(path)
    config = {"format": FORMAT, **config}
    for key in REQUIRED_KEYS:
        if key not in config:
            raise ArtifactError(f"config lacks {key}")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a server run as another user
    try:
        torch.save(net.state_dict(), staging / WEIGHTS_FILE)
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if metrics is not None:
            (staging / METRICS_FILE).write_text(
                json.dumps(metrics, indent=2, sort_keys=True) + "\n"
            )
        for name, content in (extra_files or {}).items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                target.write_text(content)
            else:
                target.write_bytes(content)
        if path.exists():
            backup = path.with_name(f".{path.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            path.rename(backup)
            staging.rename(path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


@dataclass
class LoadedModel:
    """A network ready to score raw feature windows."""

    path: Path
    config: dict
    features: FeatureConfig
    net: object  # torch.nn.Module in eval mode
    version: str
    second_stage: SecondStage | None = None  # YAMNet's opinion on flagged windows
    first_stage: FirstStage | None = None  # one member settles clear non-screams first

    @property
    def threshold(self) -> float:
        return float(self.config["threshold"])

    @property
    def stride_s(self) -> float:
        return float(self.config["stride_s"])

    def predict(self, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Scream probabilities for raw windows ``(N, n_mels, window_columns)``."""
        import torch

        windows = self._checked(windows)
        out = np.empty(windows.shape[0], dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, windows.shape[0], batch_size):
                batch = normalize_windows(windows[start : start + batch_size], self.features)
                logits = self.net(torch.from_numpy(np.ascontiguousarray(batch)))
                out[start : start + batch.shape[0]] = torch.sigmoid(logits).numpy()
        return out

    def predict_gated(
        self, windows: np.ndarray, batch_size: int = 512
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, passed)``: ``predict`` through the model's first stage.

        Windows the first stage settles (``passed`` False) score 0; the others score as
        ``predict`` scores them. A model without a first stage passes every window.
        """
        if self.first_stage is None:
            probs = self.predict(windows, batch_size)
            return probs, np.ones(probs.shape, dtype=bool)
        import torch

        windows = self._checked(windows)
        out = np.empty(windows.shape[0], dtype=np.float32)
        passed = np.empty(windows.shape[0], dtype=bool)
        with torch.inference_mode():
            for start in range(0, windows.shape[0], batch_size):
                batch = normalize_windows(windows[start : start + batch_size], self.features)
                x = torch.from_numpy(np.ascontiguousarray(batch))
                stop = start + batch.shape[0]
                out[start:stop], passed[start:stop] = gated_probabilities(
                    self.net, x, self.first_stage
                )
        return out, passed

    def _checked(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows)
        if windows.ndim != 3 or windows.shape[1:] != (
            self.features.n_mels,
            self.features.window_columns,
        ):
            raise ValueError(
                f"windows must be (N, {self.features.n_mels}, {self.features.window_columns}),"
                f" got {windows.shape}"
            )
        return windows


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Rebuild the network described by an artifact folder and load its weights."""
    from .networks import fold_batch_norms

    path = Path(path)
    config = read_model_config(path)
    features = feature_config(config)
    try:
        net = load_network(path, config)
    except ArtifactError as exc:
        raise ArtifactError(f"model artifact at {path}: {exc}") from exc
    net.eval()
    fold_batch_norms(net)  # exact up to float rounding, one pass less per convolution
    prepare(features)
    second_stage = None
    if "second_stage" in config:
        stage_config = SecondStageConfig.from_dict(config["second_stage"])
        second_stage = SecondStage(stage_config, load_yamnet(for_scoring=True))
    first_stage = None
    if applies_to(net) and "first_stage" not in config:
        first_stage = FirstStage()
    elif config.get("first_stage") is not None:
        first_stage = FirstStage.from_dict(config["first_stage"])
        if not applies_to(net) or first_stage.member >= len(net.members):
            raise ArtifactError(
                f"{path}: first stage member {first_stage.member} needs an ensemble with it"
            )
    return LoadedModel(
        path=path,
        config=config,
        features=features,
        net=net,
        version=weights_digest(path),
        second_stage=second_stage,
        first_stage=first_stage,
    )
