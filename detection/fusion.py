"""The second stage's fusion, without YAMNet: its parameters, the exact gate and fused scores.

A window's fused score is ``(1 - weight) * network + weight * yamnet``; YAMNet hears only the
windows the network scores at or above the gate, below it its score counts as 0 (the cascade).
While a stream's incident is open, a flagged window may take the YAMNet score of the last window
heard instead of being heard itself (``held``, ``HOLD_OPEN_S``). Pure NumPy: reading a model's
configuration needs no torch (``detection.artifact_config``). YAMNet's hearing is
``detection.second_stage``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# While the stream's incident is open, a flagged window takes the YAMNet score of the last window
# heard if that one ended less than this long before it: the incident is already an alert, and
# its windows decide only when it closes. Out of source (every held-out file of the shipped
# model's choice, through the live decision; ``python -m bench.open_hold``) it changes no
# alert and spares YAMNet a quarter of its windows; during a scream, most of them.
HOLD_OPEN_S = 1.0


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


def held(
    window_ends: np.ndarray, incident_open: bool, last_heard_end: float | None, hold_s: float
) -> np.ndarray:
    """Which of a stream's flagged windows (their ends, stream seconds) take the YAMNet score of
    the last window heard (ended at ``last_heard_end``) instead of being heard: all those ending
    less than ``hold_s`` after it, while the stream's incident is open."""
    ends = np.asarray(window_ends, dtype=np.float64)
    if not incident_open or last_heard_end is None or hold_s <= 0:
        return np.zeros(ends.shape, dtype=bool)
    return ends - last_heard_end < hold_s - 1e-9
