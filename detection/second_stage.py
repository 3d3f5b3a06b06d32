"""A second opinion on the windows the network flags: YAMNet's 'Screaming' score, fused.

The small CNN catches screams as phones record them but fires on speech, laughing, roosters and
whistles; YAMNet (AudioSet) rejects those but misses many phone-recorded screams. Their average
is better out of source than either (``shared/models/FINDINGS.md``, ``docs/models.md``). A model
whose ``config.json`` has a ``second_stage`` block scores a window as::

    fused = (1 - weight) * network + weight * yamnet

``yamnet`` is the 'Screaming' probability of the 0.975-s, 16 kHz patch centred on the window.
YAMNet costs about 15 times the network, so it runs only on windows the network scores at or
above ``gate``; below the gate its score counts as 0. ``gate_for`` gives the exact gate: no
window below it can reach a threshold even with a YAMNet score of 1 (set for the lower of the
offline threshold and the live decision's on threshold). The chosen gate starts there and is
raised while the out-of-source figures stay no worse (``second_stage_choice.raise_gate``): what
YAMNet would lift over the threshold from below it is, out of source, mostly false alerts. The
model's threshold and live decision apply to the fused score; all of them are chosen on
out-of-source fused scores (``detection.second_stage_choice``).
"""

from __future__ import annotations

import numpy as np

from .features import resample, resampler_delay_s
from .fusion import SecondStageConfig, cascade
from .yamnet import PATCH_SAMPLES, SAMPLE_RATE, YAMNet, patches, scream_scores

PATCH_S = PATCH_SAMPLES / SAMPLE_RATE


def patch_starts(window_starts_s: np.ndarray, window_span_s: float, offset_s: float) -> np.ndarray:
    """16 kHz sample index of the patch centred on each window (audio beginning at ``offset_s``)."""
    centre = np.asarray(window_starts_s, dtype=np.float64) + window_span_s / 2.0 - offset_s
    return np.round((centre - PATCH_S / 2.0) * SAMPLE_RATE).astype(np.int64)


def window_patches(
    audio: np.ndarray,
    rate: int,
    window_starts_s: np.ndarray,
    window_span_s: float,
    offset_s: float = 0.0,
) -> np.ndarray:
    """The 16 kHz patches YAMNet hears for the windows at ``window_starts_s`` (stream seconds) in
    ``audio`` at ``rate``, whose first sample is at ``offset_s``: ``(len(window_starts_s),
    15600)``. For audio that is not the model-rate stream itself, add the delay the stream's
    resampler put on it to ``offset_s``: patches must hear what the network's windows heard
    (YAMNet's score moves with a 10 ms shift)."""
    audio16 = resample(np.asarray(audio, dtype=np.float32), rate, SAMPLE_RATE)
    lag = resampler_delay_s(rate, SAMPLE_RATE)  # resample() delays its output by this
    starts = patch_starts(window_starts_s, window_span_s, offset_s - lag)
    return patches(audio16, starts)


class SecondStage:
    """YAMNet's scream score for windows of audio, fused with the network's."""

    def __init__(self, config: SecondStageConfig, model: YAMNet) -> None:
        self.config = config
        self.model = model

    def flagged(self, network: np.ndarray) -> np.ndarray:
        return np.asarray(network) >= self.config.gate

    def scream_scores(
        self,
        audio: np.ndarray,
        rate: int,
        window_starts_s: np.ndarray,
        window_span_s: float,
        offset_s: float = 0.0,
    ) -> np.ndarray:
        """YAMNet's 'Screaming' score of the windows at ``window_starts_s`` (stream seconds) in
        ``audio`` at ``rate``, whose first sample is at ``offset_s`` (``window_patches``)."""
        if len(window_starts_s) == 0:
            return np.zeros(0, dtype=np.float32)
        return scream_scores(
            self.model, window_patches(audio, rate, window_starts_s, window_span_s, offset_s)
        )

    def rescore(
        self,
        network: np.ndarray,
        audio: np.ndarray,
        rate: int,
        window_starts_s: np.ndarray,
        window_span_s: float,
        offset_s: float = 0.0,
    ) -> np.ndarray:
        """The fused scores of windows the network scored ``network``."""
        network = np.asarray(network, dtype=np.float32)
        flagged = self.flagged(network)
        second = np.zeros_like(network)
        if flagged.any():
            second[flagged] = self.scream_scores(
                audio, rate, np.asarray(window_starts_s)[flagged], window_span_s, offset_s
            )
        return cascade(network, second, flagged, self.config.weight)
