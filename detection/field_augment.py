"""Field realism: what a cheap microphone, a phone's processing and its codec do to a sound.

A scream reaches the model through a microphone (its own frequency response), often a phone's
automatic gain control and compressor, a lossy codec, and an input stage that clips when the
sound is loud; or it arrives as a whisper near the noise floor. Each function here simulates
one of these on mono float32 audio at the model rate. Like ``augment``'s, they are pure (the
input is never modified) and deterministic given the ``numpy.random.Generator``; the
``random_*`` ones draw their settings from it, the others take them as arguments.

* ``mic_eq``: peaking and shelving biquads (the RBJ cookbook's), e.g. a MEMS capsule's
  low-frequency roll-off, a port resonance, a dull or bright top (``random_mic_eq``);
* ``automatic_gain``: a level-tracking gain towards a target level with attack and release
  (quiet passages are lifted, loud ones pulled down, pumping in between);
* ``compress``: a compressor above a threshold at a ratio, with make-up gain to the input's RMS
  (the crest factor falls);
* ``codec_round_trip``: Opus in OGG at 8 or 16 kHz and a low bitrate (messaging and VoIP apps),
  or G.711 mu-law at 8 kHz (telephony), encoded and decoded in memory by libsndfile;
* ``clip``: hard or soft (``tanh``) clipping at a level: the peak never exceeds it;
  ``random_clipping`` drives the signal into it by a random amount;
* ``whisper_to_saturation``: the peak level drawn from -30 dBFS (a whisper) to above full
  scale (driven into a clipper at 0 dBFS), then quantised to 16 bits as an ADC would.
"""

from __future__ import annotations

import io

import numpy as np
import scipy.signal
import soundfile
import soxr

from .features import MODEL_RATE
from .waveform import fit_length, mono, peak, rms

OPUS_RATES = (8_000, 16_000)  # rates Opus encodes that phones and VoIP use
OPUS_LEVELS = (0.9, 1.0)  # libsndfile compression levels: about 34 to 11 kbit/s
ULAW_RATE = 8_000
CODECS = ("opus", "ulaw")
FULL_SCALE = 1.0
PCM16_STEP = 1.0 / 32_767


# --------------------------------------------------------------------------- microphone EQ


def biquad(kind: str, freq: float, gain_db: float, q: float, sr: int = MODEL_RATE) -> np.ndarray:
    """One second-order section ``[b0, b1, b2, 1, a1, a2]`` of the RBJ audio-EQ cookbook:
    ``kind`` ``"peak"`` (bell of width ``q``), ``"lowshelf"`` or ``"highshelf"`` (slope 1)."""
    if not 0.0 < freq < sr / 2:
        raise ValueError(f"filter frequency {freq} Hz outside (0, {sr / 2})")
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * freq / sr
    cos, sin = np.cos(w0), np.sin(w0)
    if kind == "peak":
        alpha = sin / (2.0 * q)
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    elif kind in ("lowshelf", "highshelf"):
        alpha = sin / 2.0 * np.sqrt(2.0)
        root = 2.0 * np.sqrt(a) * alpha
        sign = 1.0 if kind == "lowshelf" else -1.0
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + root),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - root),
        ]
        den = [
            (a + 1) + sign * (a - 1) * cos + root,
            -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
            (a + 1) + sign * (a - 1) * cos - root,
        ]
    else:
        raise ValueError(f"unknown filter kind {kind!r} (peak, lowshelf, highshelf)")
    return np.array([*b, *den], dtype=np.float64) / den[0]


def mic_eq(
    x: np.ndarray, filters: list[tuple[str, float, float, float]], sr: int = MODEL_RATE
) -> np.ndarray:
    """``x`` through a cascade of ``(kind, freq_hz, gain_db, q)`` biquads (``biquad``)."""
    x = mono(x)
    if x.size == 0 or not filters:
        return x.copy()
    sos = np.stack([biquad(kind, f, g, q, sr) for kind, f, g, q in filters])
    return scipy.signal.sosfilt(sos, x.astype(np.float64)).astype(np.float32)


def random_mic_eq(x: np.ndarray, rng: np.random.Generator, sr: int = MODEL_RATE) -> np.ndarray:
    """A random small-microphone response: a low shelf cutting 0-15 dB below 80-400 Hz (small
    capsules and ports), one or two resonances of -6 to +10 dB between 1.5 and 7 kHz (Q
    0.7-4), and a high shelf of -12 to +4 dB from 5-9 kHz (a dull or bright top)."""
    top = 0.45 * sr
    filters = [("lowshelf", float(rng.uniform(80, 400)), float(rng.uniform(-15, 0)), 0.707)]
    for _ in range(int(rng.integers(1, 3))):
        freq = min(float(rng.uniform(1_500, 7_000)), top)
        filters.append(("peak", freq, float(rng.uniform(-6, 10)), float(rng.uniform(0.7, 4))))
    filters.append(
        ("highshelf", min(float(rng.uniform(5_000, 9_000)), top), float(rng.uniform(-12, 4)), 0.707)
    )
    return mic_eq(x, filters, sr)


# --------------------------------------------------------------------------- level processing


def _frame_levels_db(x: np.ndarray, frame: int, use_peak: bool) -> np.ndarray:
    """RMS (or peak) level in dB of consecutive frames of ``frame`` samples (the last padded)."""
    n = -(-x.shape[0] // frame)
    framed = np.pad(x.astype(np.float64), (0, n * frame - x.shape[0])).reshape(n, frame)
    level = np.max(np.abs(framed), axis=1) if use_peak else np.sqrt(np.mean(framed**2, axis=1))
    return 20.0 * np.log10(np.maximum(level, 1e-6))


def _smooth_db(levels: np.ndarray, frame_s: float, attack_s: float, release_s: float):
    """A level follower: rises with time constant ``attack_s``, falls with ``release_s``."""
    up = 1.0 - np.exp(-frame_s / max(attack_s, 1e-6))
    down = 1.0 - np.exp(-frame_s / max(release_s, 1e-6))
    out = np.empty_like(levels)
    state = levels[0]
    for i, level in enumerate(levels):
        state += (up if level > state else down) * (level - state)
        out[i] = state
    return out


def _apply_frame_gain(x: np.ndarray, gain_db: np.ndarray, frame: int) -> np.ndarray:
    """Per-frame gains interpolated linearly between frame centres over the samples."""
    centres = (np.arange(gain_db.size) + 0.5) * frame
    gains = np.interp(np.arange(x.shape[0]), centres, 10.0 ** (gain_db / 20.0))
    return (x.astype(np.float64) * gains).astype(np.float32)


def automatic_gain(
    x: np.ndarray,
    sr: int = MODEL_RATE,
    target_db: float = -20.0,
    attack_s: float = 0.02,
    release_s: float = 0.5,
    max_gain_db: float = 30.0,
    frame_s: float = 0.005,
) -> np.ndarray:
    """Automatic gain control: the RMS level of 5 ms frames is followed (attack, release) and
    the gain brings it to ``target_db`` dBFS, boosting by at most ``max_gain_db`` and cutting
    by as much as needed."""
    x = mono(x)
    if x.size == 0:
        return x.copy()
    frame = max(1, int(round(frame_s * sr)))
    follower = _smooth_db(_frame_levels_db(x, frame, use_peak=False), frame_s, attack_s, release_s)
    return _apply_frame_gain(x, np.minimum(target_db - follower, max_gain_db), frame)


def random_automatic_gain(
    x: np.ndarray, rng: np.random.Generator, sr: int = MODEL_RATE
) -> np.ndarray:
    """``automatic_gain`` with a target of -26 to -12 dBFS, attack 5-50 ms, release 0.2-1.5 s
    and up to 20-40 dB of boost."""
    return automatic_gain(
        x,
        sr,
        target_db=float(rng.uniform(-26, -12)),
        attack_s=float(rng.uniform(0.005, 0.05)),
        release_s=float(rng.uniform(0.2, 1.5)),
        max_gain_db=float(rng.uniform(20, 40)),
    )


def compress(
    x: np.ndarray,
    sr: int = MODEL_RATE,
    threshold_db: float = -20.0,
    ratio: float = 4.0,
    attack_s: float = 0.005,
    release_s: float = 0.1,
    frame_s: float = 0.001,
) -> np.ndarray:
    """A dynamic-range compressor: above ``threshold_db`` (of the followed peak level of 1 ms
    frames, dBFS) the level grows only ``1 / ratio`` as fast; make-up gain then restores the
    input's RMS. The gain follows the highest level of the next three attack times (a
    look-ahead, as digital compressors have), so onsets are caught too: peaks come down against
    the body of the sound, the crest factor falls."""
    x = mono(x)
    if ratio < 1.0:
        raise ValueError(f"compression ratio must be at least 1, got {ratio}")
    if x.size == 0 or rms(x) == 0.0:
        return x.copy()
    frame = max(1, int(round(frame_s * sr)))
    follower = _smooth_db(_frame_levels_db(x, frame, use_peak=True), frame_s, attack_s, release_s)
    ahead = int(round(3 * attack_s / frame_s))
    padded = np.concatenate([follower, np.full(ahead, follower[-1])])
    coming = np.lib.stride_tricks.sliding_window_view(padded, ahead + 1).max(axis=1)
    reduction = -np.maximum(coming - threshold_db, 0.0) * (1.0 - 1.0 / ratio)
    y = _apply_frame_gain(x, reduction, frame)
    return (y * (rms(x) / max(rms(y), 1e-12))).astype(np.float32)


def random_compression(x: np.ndarray, rng: np.random.Generator, sr: int = MODEL_RATE) -> np.ndarray:
    """``compress`` with a threshold 6-30 dB below the clip's peak, ratio 2-10, attack 1-10 ms
    and release 50-300 ms."""
    x = mono(x)
    peak_db = 20.0 * np.log10(max(peak(x), 1e-6))
    return compress(
        x,
        sr,
        threshold_db=peak_db - float(rng.uniform(6, 30)),
        ratio=float(rng.uniform(2, 10)),
        attack_s=float(rng.uniform(0.001, 0.01)),
        release_s=float(rng.uniform(0.05, 0.3)),
    )


# --------------------------------------------------------------------------- codec


def codec_round_trip(
    x: np.ndarray, codec: str, rate: int, level: float = 1.0, sr: int = MODEL_RATE
) -> np.ndarray:
    """The clip resampled to ``rate``, encoded and decoded in memory, resampled back; same
    length. ``codec``: ``"opus"`` (OGG/Opus; ``level``, libsndfile's compression level from 0
    to 1, sets the bitrate: 0.9 about 34, 1.0 about 11 kbit/s) or ``"ulaw"`` (G.711 mu-law,
    8 bits a sample). Nothing above ``rate / 2`` survives."""
    x = mono(x)
    if x.size == 0:
        return x.copy()
    if codec == "opus":
        fmt, subtype, options = "OGG", "OPUS", {"compression_level": float(level)}
    elif codec == "ulaw":
        fmt, subtype, options = "WAV", "ULAW", {}
    else:
        raise ValueError(f"unknown codec {codec!r} ({', '.join(CODECS)})")
    low = soxr.resample(x, sr, rate, quality="HQ") if rate != sr else x
    low = np.clip(low, -FULL_SCALE, FULL_SCALE).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, low, rate, format=fmt, subtype=subtype, **options)
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32")
    back = soxr.resample(decoded, rate, sr, quality="HQ") if rate != sr else decoded
    return np.ascontiguousarray(fit_length(back, x.shape[0]), dtype=np.float32)


def random_codec(x: np.ndarray, rng: np.random.Generator, sr: int = MODEL_RATE) -> np.ndarray:
    """Opus at 8 or 16 kHz and 11-34 kbit/s (three times in four), else mu-law at 8 kHz.

    The clip is scaled so that its peak is at most full scale first (codecs take PCM), and
    back after."""
    x = mono(x)
    top = peak(x)
    scale = FULL_SCALE / top if top > FULL_SCALE else 1.0
    if rng.random() < 0.75:
        rate = int(OPUS_RATES[int(rng.integers(len(OPUS_RATES)))])
        y = codec_round_trip(x * scale, "opus", rate, float(rng.uniform(*OPUS_LEVELS)), sr)
    else:
        y = codec_round_trip(x * scale, "ulaw", ULAW_RATE, sr=sr)
    return (y / scale).astype(np.float32)


# --------------------------------------------------------------------------- clipping and level


def clip(x: np.ndarray, level: float, soft: bool = False) -> np.ndarray:
    """Clip at ``level``: hard (flat tops) or soft (``level * tanh(x / level)``, which rounds
    the tops and adds odd harmonics below the level too). ``|y| <= level`` everywhere."""
    x = mono(x)
    if level <= 0:
        raise ValueError(f"clip level must be positive, got {level}")
    if soft:
        return (level * np.tanh(x.astype(np.float64) / level)).astype(np.float32)
    return np.clip(x, -level, level).astype(np.float32)


def random_clipping(
    x: np.ndarray,
    rng: np.random.Generator,
    drive_db: tuple[float, float] = (3.0, 20.0),
) -> np.ndarray:
    """Clip at a level ``drive_db`` (drawn) below the clip's peak, hard or soft (even odds):
    an input stage driven that far past its limit."""
    x = mono(x)
    top = peak(x)
    if top == 0.0:
        return x.copy()
    drive = float(rng.uniform(*drive_db))
    soft = bool(rng.random() < 0.5)
    return clip(x, top * 10.0 ** (-drive / 20.0), soft)


def quantise_pcm16(x: np.ndarray) -> np.ndarray:
    """Rounded to the 16-bit grid (full scale 1.0), as an ADC delivers it."""
    x = mono(x)
    return (np.round(np.clip(x, -FULL_SCALE, FULL_SCALE) / PCM16_STEP) * PCM16_STEP).astype(
        np.float32
    )


def whisper_to_saturation(
    x: np.ndarray,
    rng: np.random.Generator,
    low_db: float = -30.0,
    high_db: float = 12.0,
) -> np.ndarray:
    """The clip's peak set to a level drawn from ``low_db`` to ``high_db`` dBFS: from a whisper
    near the 16-bit floor to a sound driven into the clipper at full scale (hard or soft, even
    odds, when the level is above 0 dBFS); then quantised to 16 bits."""
    x = mono(x)
    top = peak(x)
    level_db = float(rng.uniform(low_db, high_db))
    soft = bool(rng.random() < 0.5)
    if top == 0.0:
        return x.copy()
    y = x * (10.0 ** (level_db / 20.0) / top)
    if level_db > 0.0:
        y = clip(y, FULL_SCALE, soft)
    return quantise_pcm16(y)
