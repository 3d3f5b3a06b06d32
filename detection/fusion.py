"""The second stage's fusion, without YAMNet: its parameters, the exact gate and fused scores.

A window's fused score is ``(1 - weight) * network + weight * yamnet``; YAMNet hears only the
windows the network scores at or above the gate, below it its score counts as 0 (the cascade).
Pure NumPy: reading a model's configuration needs no torch (``detection.artifact_config``).
YAMNet's hearing is ``detection.second_stage``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SecondStageConfig:
    weight: float = 0.5
    gate: float = 0.0
    name: str = "yamnet_screaming"

    def __post_init__(self) -> None:
        if not 0.0 < self.weight < 1.0:
            raise ValueError(f"second stage weight {self.weight} is not in (0, 1)")
        if not 0.0 <= self.gate < 1.0:
            raise ValueError(f"second stage gate {self.gate} is not in [0, 1)")
        if self.name != "yamnet_screaming":
            raise ValueError(f"unknown second stage {self.name!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SecondStageConfig:
        unknown = set(data) - {"weight", "gate", "name"}
        if unknown:
            raise ValueError(f"unknown second stage parameters: {sorted(unknown)}")
        return cls(**data)


def gate_for(threshold: float, weight: float) -> float:
    """The network score below which a window cannot reach ``threshold`` whatever YAMNet says."""
    return float(max(0.0, (threshold - weight) / (1.0 - weight)))


def fuse(network: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    return (1.0 - weight) * np.asarray(network) + weight * np.asarray(second)


def cascade(
    network: np.ndarray, second: np.ndarray, flagged: np.ndarray, weight: float
) -> np.ndarray:
    """Fused scores where ``flagged`` (YAMNet's score known), else ``(1 - weight) * network``."""
    out = (1.0 - weight) * np.asarray(network, dtype=np.float64)
    out[flagged] += weight * np.asarray(second, dtype=np.float64)[flagged]
    return out.astype(np.float32)
