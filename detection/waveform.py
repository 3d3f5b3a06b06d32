"""Small helpers shared by the waveform augmentations (``augment``, ``field_augment``)."""

from __future__ import annotations

import numpy as np


def mono(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 mono audio ``(n,)``; anything else is refused."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"augmentations take mono audio (n,), got shape {x.shape}")
    return x


def rms(x: np.ndarray) -> float:
    """Root mean square (0 for no samples)."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Cropped or zero-padded at the end to ``length`` samples."""
    if x.shape[0] >= length:
        return x[:length]
    return np.pad(x, (0, length - x.shape[0]))


def peak(x: np.ndarray) -> float:
    """Largest absolute sample (0 for no samples)."""
    return float(np.max(np.abs(x))) if x.size else 0.0
