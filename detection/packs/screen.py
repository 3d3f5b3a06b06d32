"""The scream screen: is a cry long, harmonic, high-pitched and loud enough to be a scream?

Pure functions on a mono float signal. Pitch is tracked with probabilistic YIN
(``librosa.pyin``) on a 16 kHz copy in 10 ms hops; a frame counts as *scream-like* when it is
voiced, its pitch is at least ``min_f0_hz``, it is harmonic (the frame's normalised
autocorrelation at the pitch period, its *harmonicity*, is at least ``min_harmonicity``) and it
is within ``max_below_peak_db`` of the clip's loudest frame. The clip passes when the longest
run of scream-like frames (gaps up to ``max_gap_s`` bridged) lasts ``min_run_s`` and the
clip's loudest frame reaches ``min_peak_dbfs``.

pyin's own voicing probability is not used as harmonicity: on these clips it stays near zero
for clean harmonic screams above 1 kHz while the Viterbi path still marks them voiced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import librosa
import numpy as np

from detection.features import resample

SCREEN_RATE = 16_000
HOP = 160  # 10 ms
FRAME = 1024  # 64 ms: two periods of the lowest tracked pitch
FMIN_HZ = 80.0
FMAX_HZ = 2000.0


@dataclass(frozen=True)
class ScreenThresholds:
    min_f0_hz: float = 400.0
    min_run_s: float = 0.30
    max_gap_s: float = 0.05
    min_harmonicity: float = 0.78
    max_below_peak_db: float = 15.0
    min_peak_dbfs: float = -30.0


THRESHOLDS = ScreenThresholds()


@dataclass(frozen=True)
class ScreenResult:
    passed: bool
    reason: str  # why it failed (empty when passed)
    run_s: float  # longest scream-like run
    median_f0_hz: float  # over that run (0 when none)
    harmonicity: float  # median normalised autocorrelation at the pitch period over the run
    peak_dbfs: float  # loudest 64 ms frame
    voiced_share: float  # share of frames voiced at any pitch

    def as_dict(self) -> dict:
        return asdict(self)


def longest_run(mask: np.ndarray, max_gap: int = 0) -> tuple[int, int]:
    """(start, stop) frame indices of the longest run of True, bridging gaps of up to
    ``max_gap`` False frames; (0, 0) when there is no True frame."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return 0, 0
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    stops = np.concatenate((idx[breaks], [idx[-1]])) + 1
    best = int(np.argmax(stops - starts))
    return int(starts[best]), int(stops[best])


def frame_levels_dbfs(y: np.ndarray) -> np.ndarray:
    """RMS level (dBFS) of each pyin frame of a 16 kHz signal (centred frames)."""
    rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP, center=True)[0]
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def pitch_track(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0 Hz with NaN when unvoiced, voiced flags, voicing probabilities) of 16 kHz audio."""
    f0, voiced, prob = librosa.pyin(
        y,
        fmin=FMIN_HZ,
        fmax=FMAX_HZ,
        sr=SCREEN_RATE,
        frame_length=FRAME,
        hop_length=HOP,
        center=True,
    )
    return f0, voiced.astype(bool), prob


def harmonicity(y: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Per frame (centred, FRAME long, HOP apart), the normalised autocorrelation of the frame
    at its pitch period (best of the period and its neighbours +-1 sample); 0 where ``f0`` is
    NaN. 1 for a periodic frame, near 0 for noise."""
    padded = np.pad(np.asarray(y, dtype=np.float64), FRAME // 2)
    frames = librosa.util.frame(padded, frame_length=FRAME, hop_length=HOP, axis=0)
    count = min(len(frames), len(f0))
    out = np.zeros(len(f0))
    for i in range(count):
        if not np.isfinite(f0[i]) or f0[i] <= 0:
            continue
        x = frames[i]
        period = int(round(SCREEN_RATE / f0[i]))
        best = 0.0
        for lag in (period - 1, period, period + 1):
            if lag <= 0 or lag >= FRAME // 2:
                continue
            a, b = x[:-lag], x[lag:]
            denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
            if denom > 0:
                best = max(best, float(np.dot(a, b) / denom))
        out[i] = best
    return out


def screen(
    samples: np.ndarray, rate: int, thresholds: ScreenThresholds = THRESHOLDS
) -> ScreenResult:
    """Screen one clip (mono float samples at ``rate``)."""
    y = np.asarray(resample(np.asarray(samples, dtype=np.float32), rate, SCREEN_RATE))
    if len(y) < FRAME:
        return ScreenResult(False, "shorter than one pitch frame", 0.0, 0.0, 0.0, -120.0, 0.0)
    f0, voiced, _ = pitch_track(y.astype(np.float32))
    levels = frame_levels_dbfs(y)[: len(f0)]
    peak = float(levels.max())
    harmonic = harmonicity(y, f0)
    high = voiced & (np.nan_to_num(f0) >= thresholds.min_f0_hz)
    high &= harmonic >= thresholds.min_harmonicity
    high &= levels >= peak - thresholds.max_below_peak_db
    start, stop = longest_run(high, max_gap=int(round(thresholds.max_gap_s * SCREEN_RATE / HOP)))
    run_frames = np.arange(start, stop)
    run_frames = run_frames[high[run_frames]]
    run_s = (stop - start) * HOP / SCREEN_RATE
    median_f0 = float(np.median(f0[run_frames])) if run_frames.size else 0.0
    harmonic_run = float(np.median(harmonic[run_frames])) if run_frames.size else 0.0
    voiced_share = float(voiced.mean()) if voiced.size else 0.0
    reasons = []
    if peak < thresholds.min_peak_dbfs:
        reasons.append(f"quiet (peak {peak:.1f} dBFS < {thresholds.min_peak_dbfs:g})")
    if run_s < thresholds.min_run_s:
        reasons.append(
            f"high harmonic run {run_s:.2f} s < {thresholds.min_run_s:g} s (pitch >="
            f" {thresholds.min_f0_hz:g} Hz, harmonicity >= {thresholds.min_harmonicity:g})"
        )
    return ScreenResult(
        passed=not reasons,
        reason="; ".join(reasons),
        run_s=round(run_s, 3),
        median_f0_hz=round(median_f0, 1),
        harmonicity=round(harmonic_run, 3),
        peak_dbfs=round(peak, 1),
        voiced_share=round(voiced_share, 3),
    )
