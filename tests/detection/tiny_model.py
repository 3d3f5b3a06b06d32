"""A small, untrained but real model artifact for scorer tests (no shipped model needed)."""

import torch

from detection.artifacts import save_artifact
from detection.features import FeatureConfig
from detection.networks import build_network


def make_artifact(path, seed: int, features: FeatureConfig | None = None, threshold: float = 0.5):
    features = features or FeatureConfig()
    torch.manual_seed(seed)
    net = build_network("A", n_mels=features.n_mels, n_frames=features.window_columns, width=0.25)
    net.eval()
    config = {
        "architecture": "A",
        "arch_params": {"width": 0.25},
        "features": features.to_dict(),
        "stride_s": 0.1,
        "threshold": threshold,
        "decision": {"smoothing_windows": 2, "merge_gap_s": 1.0},
    }
    return save_artifact(path, net, config)
