"""Training augmentations: the seed's five plus level and channel simulation.

Waveform functions take mono float32 audio at the model rate (22,050 Hz) and a
``numpy.random.Generator``; they are pure (the input is never modified) and deterministic given
the generator's state. ``WaveAugmenter`` applies the ones switched on in an ``AugmentConfig``.

Spectrogram functions act on feature windows: ``spec_augment`` on one ``(n_mels, T)`` array,
``spec_augment_batch`` on a torch batch ``(N, n_mels, T)`` (used per training batch), and
``augment_batch`` applies the latter only when the config switches it on. Masked cells take the
window's mean value (features are dB, so zero would be a loud artificial value).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import scipy.signal
import soxr

from .features import MODEL_RATE
from .resampling import PolyphaseResampler

# --------------------------------------------------------------------------- helpers


def _mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"augmentations take mono audio (n,), got shape {x.shape}")
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    if x.shape[0] >= length:
        return x[:length]
    return np.pad(x, (0, length - x.shape[0]))


# --------------------------------------------------------------------------- waveform


def time_shift(
    x: np.ndarray, rng: np.random.Generator, max_shift_s: float = 0.5, sr: int = MODEL_RATE
) -> np.ndarray:
    """Circularly shift by a random offset of up to ``max_shift_s`` either way (same length)."""
    x = _mono(x)
    limit = int(round(max_shift_s * sr))
    if limit <= 0 or x.size == 0:
        return x.copy()
    return np.roll(x, int(rng.integers(-limit, limit + 1)))


def speed_change(x: np.ndarray, factor: float, sr: int = MODEL_RATE) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it): length becomes ``len(x) / factor``."""
    x = _mono(x)
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0 or x.size == 0:
        return x.copy()
    # Treat the samples as if recorded at sr * factor and resample them to sr.
    out = soxr.resample(x, sr * factor, sr, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def speed_tune(
    x: np.ndarray,
    rng: np.random.Generator,
    low: float = 0.9,
    high: float = 1.1,
    sr: int = MODEL_RATE,
) -> np.ndarray:
    """Speed change by a factor drawn uniformly from ``[low, high]`` (soxr resampling)."""
    return speed_change(x, float(rng.uniform(low, high)), sr)


def mix_background(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add ``noise`` (looped or cropped to ``len(x)``) scaled to ``snr_db`` below the signal.

    A silent signal or silent noise is returned unchanged (no SNR can be defined).
    """
    x = _mono(x)
    noise = _mono(noise)
    if x.size == 0 or noise.size == 0:
        return x.copy()
    noise = np.resize(noise, x.shape[0])  # loops a short noise, crops a long one
    signal_rms, noise_rms = _rms(x), _rms(noise)
    if signal_rms == 0.0 or noise_rms == 0.0:
        return x.copy()
    scale = signal_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    return (x + scale * noise).astype(np.float32)


def synthetic_room_ir(
    rng: np.random.Generator,
    sr: int = MODEL_RATE,
    rt60_range: tuple[float, float] = (0.2, 1.2),
) -> np.ndarray:
    """A plausible room impulse response: direct path, early reflections, decaying noise tail.

    The tail is noise under an exponential envelope reaching -60 dB at a random RT60; a few
    early reflections arrive 2-40 ms after the direct path. Peak-normalised, float32.
    """
    rt60 = float(rng.uniform(*rt60_range))
    length = max(int(sr * min(rt60, 1.5)), 16)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.908 * t / rt60)  # ln(1000): -60 dB at rt60
    onset = int(0.005 * sr)
    tail[:onset] *= np.linspace(0.0, 1.0, onset)  # the diffuse field builds up after ~5 ms
    ir = tail * float(rng.uniform(0.05, 0.3))  # direct-to-reverberant ratio
    ir[0] = 1.0
    for _ in range(int(rng.integers(3, 9))):
        delay = int(rng.uniform(0.002, 0.04) * sr)
        if delay < length:
            ir[delay] += rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.6)
    return (ir / np.max(np.abs(ir))).astype(np.float32)


def convolve_ir(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response, aligned on its direct path, at the input's RMS level."""
    x = _mono(x)
    ir = _mono(ir)
    if x.size == 0 or ir.size == 0:
        return x.copy()
    start = int(np.argmax(np.abs(ir)))
    wet = scipy.signal.fftconvolve(x.astype(np.float64), ir.astype(np.float64))
    wet = wet[start : start + x.shape[0]]
    wet_rms, dry_rms = _rms(wet), _rms(x)
    if wet_rms > 0.0:
        wet *= dry_rms / wet_rms
    return wet.astype(np.float32)


def random_gain(
    x: np.ndarray, rng: np.random.Generator, db_range: tuple[float, float] = (-12.0, 6.0)
) -> np.ndarray:
    """Scale by a gain drawn uniformly in dB from ``db_range``."""
    x = _mono(x)
    return (x * 10.0 ** (float(rng.uniform(*db_range)) / 20.0)).astype(np.float32)


def phone_channel(x: np.ndarray, rng: np.random.Generator, sr: int = MODEL_RATE) -> np.ndarray:
    """Simulate a phone or cheap microphone: band limit, maybe a low-rate round trip, saturation.

    - band: telephone 300-3400 Hz, or a random low cut (100-500 Hz) and high cut (3-7 kHz);
    - half the time a soxr round trip through 8 or 16 kHz (codec-like loss of the top band);
    - half the time soft clipping (``tanh``) with a random drive, as an overdriven input stage.
    Same length as the input.
    """
    x = _mono(x)
    if x.size == 0:
        return x.copy()
    nyquist = sr / 2.0
    if rng.random() < 0.5:
        low, high = 300.0, 3400.0
    else:
        low, high = float(rng.uniform(100.0, 500.0)), float(rng.uniform(3000.0, 7000.0))
    high = min(high, 0.95 * nyquist)
    sos = scipy.signal.butter(6, [low, high], btype="bandpass", fs=sr, output="sos")
    y = scipy.signal.sosfilt(sos, x.astype(np.float64))
    if rng.random() < 0.5:
        rate = 8000 if rng.random() < 0.5 else 16000
        if rate < sr:
            y = soxr.resample(soxr.resample(y, sr, rate), rate, sr)
            y = _fit_length(y, x.shape[0])
    if rng.random() < 0.5:
        peak = float(np.max(np.abs(y)))
        if peak > 0.0:
            drive = float(rng.uniform(1.5, 4.0))
            y = np.tanh(drive * y / peak) * (peak / np.tanh(drive))
    return np.ascontiguousarray(y, dtype=np.float32)


def device_round_trip(x: np.ndarray, rate: int, sr: int = MODEL_RATE) -> np.ndarray:
    """What a device streaming at ``rate`` delivers to the features: the clip resampled to
    ``rate`` and back by the serving resampler (nothing left above ``rate / 2``), realigned
    on the original (the two resamplers' delays removed), same length."""
    x = _mono(x)
    if x.size == 0 or rate >= sr:
        return x.copy()
    down, up = PolyphaseResampler(sr, rate), PolyphaseResampler(rate, sr)
    y = up.resample_chunk(down.resample_chunk(x, last=True), last=True)
    lag = int(round((down.delay_s + up.delay_s) * sr))
    return _fit_length(y[lag:], x.shape[0])


def device_rate(
    x: np.ndarray, rng: np.random.Generator, rates: tuple[int, ...], sr: int = MODEL_RATE
) -> np.ndarray:
    """A device's sample rate drawn from ``rates`` (the reference client's 16 kHz first)."""
    return device_round_trip(x, int(rates[int(rng.integers(len(rates)))]), sr)


# --------------------------------------------------------------------------- spectrogram


def _warp_positions(length: int, centre: float, shift: float) -> np.ndarray:
    """Source column for every target column when ``centre`` moves to ``centre + shift``."""
    target = np.arange(length, dtype=np.float64)
    new_centre = centre + shift
    left = target * (centre / new_centre)
    right = centre + (target - new_centre) * ((length - 1 - centre) / (length - 1 - new_centre))
    return np.where(target < new_centre, left, right)


def spec_augment(
    spec: np.ndarray,
    rng: np.random.Generator,
    time_warp: int = 4,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 5,
) -> np.ndarray:
    """SpecAugment of one ``(n_mels, T)`` window: time warp, frequency masks, time masks.

    Time warp moves a random centre column by up to ``time_warp`` columns, stretching one side
    and squeezing the other (linear interpolation). Each mask covers up to ``*_width`` rows or
    columns and takes the window's mean value.
    """
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim != 2:
        raise ValueError(f"spec_augment takes one (n_mels, T) window, got shape {spec.shape}")
    n_mels, length = spec.shape
    out = spec.copy()
    warp = min(time_warp, (length - 3) // 2)
    if warp >= 1:
        centre = int(rng.integers(warp + 1, length - warp - 1))
        shift = int(rng.integers(-warp, warp + 1))
        if shift:
            src = _warp_positions(length, centre, shift)
            lo = np.clip(np.floor(src).astype(np.int64), 0, length - 1)
            hi = np.minimum(lo + 1, length - 1)
            frac = (src - lo).astype(np.float32)
            out = out[:, lo] * (1.0 - frac) + out[:, hi] * frac
    fill = out.mean()
    for _ in range(freq_masks):
        width = int(rng.integers(0, min(freq_width, n_mels) + 1))
        start = int(rng.integers(0, n_mels - width + 1))
        out[start : start + width, :] = fill
    for _ in range(time_masks):
        width = int(rng.integers(0, min(time_width, length) + 1))
        start = int(rng.integers(0, length - width + 1))
        out[:, start : start + width] = fill
    return out.astype(np.float32)


def spec_augment_batch(
    x,
    generator,
    time_warp: int = 4,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 5,
):
    """SpecAugment of a torch batch ``(N, n_mels, T)``, each window drawn independently.

    Vectorised (no Python loop over windows). ``generator`` is a ``torch.Generator`` on the
    batch's device. Returns a new tensor; the input is not modified.
    """
    import torch

    if x.dim() != 3:
        raise ValueError(f"spec_augment_batch takes (N, n_mels, T), got {tuple(x.shape)}")
    n, n_mels, length = x.shape
    device = x.device
    out = x.clone()
    if n == 0:
        return out

    def draw(high: int) -> torch.Tensor:
        """Integers in [0, high) per window (``high`` may be a tensor)."""
        u = torch.rand(n, generator=generator, device=device)
        return (u * high).floor().long()

    warp = min(time_warp, (length - 3) // 2)
    if warp >= 1:
        centre = (warp + 1 + draw(length - 2 * warp - 2)).to(x.dtype)[:, None]
        shift = (draw(2 * warp + 1) - warp).to(x.dtype)[:, None]
        target = torch.arange(length, device=device, dtype=x.dtype)[None, :]
        new_centre = centre + shift
        left = target * (centre / new_centre)
        right = centre + (target - new_centre) * ((length - 1 - centre) / (length - 1 - new_centre))
        src = torch.where(target < new_centre, left, right)  # (N, T)
        lo = src.floor().clamp(0, length - 1)
        frac = (src - lo)[:, None, :]
        lo = lo.long()
        hi = (lo + 1).clamp(max=length - 1)
        gather_lo = out.gather(2, lo[:, None, :].expand(n, n_mels, length))
        gather_hi = out.gather(2, hi[:, None, :].expand(n, n_mels, length))
        out = gather_lo * (1.0 - frac) + gather_hi * frac
    fill = out.mean(dim=(1, 2), keepdim=True)
    mask = torch.zeros(n, n_mels, length, dtype=torch.bool, device=device)
    rows = torch.arange(n_mels, device=device)[None, :]
    cols = torch.arange(length, device=device)[None, :]
    for _ in range(freq_masks):
        width = draw(min(freq_width, n_mels) + 1)
        start = draw(n_mels - width + 1)
        band = (rows >= start[:, None]) & (rows < (start + width)[:, None])
        mask |= band[:, :, None]
    for _ in range(time_masks):
        width = draw(min(time_width, length) + 1)
        start = draw(length - width + 1)
        span = (cols >= start[:, None]) & (cols < (start + width)[:, None])
        mask |= span[:, None, :]
    return torch.where(mask, fill.expand_as(out), out)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, how often (``*_p``) and how strongly. Stored with a model."""

    speed: bool = True
    speed_p: float = 0.5
    speed_low: float = 0.9
    speed_high: float = 1.1
    time_shift: bool = True
    time_shift_p: float = 0.5
    time_shift_max_s: float = 0.5
    reverb: bool = True
    reverb_p: float = 0.3
    rt60_low: float = 0.2
    rt60_high: float = 1.2
    background: bool = True
    background_p: float = 0.5
    snr_low_db: float = 0.0
    snr_high_db: float = 20.0
    phone: bool = True
    phone_p: float = 0.2
    # A device streaming at a lower rate (16 kHz, the reference client's, or 8 kHz): the
    # clip through the serving resampler and back, so the network learns what such a
    # stream looks like (an empty band above the device's Nyquist).
    device_rate: bool = True
    device_rate_p: float = 0.5
    device_rates: tuple[int, ...] = (16_000, 16_000, 16_000, 8_000)
    gain: bool = True
    gain_p: float = 0.5
    gain_low_db: float = -12.0
    gain_high_db: float = 6.0
    spec_augment: bool = True
    spec_augment_p: float = 0.8
    time_warp: int = 4
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 5

    @classmethod
    def none(cls) -> AugmentConfig:
        """Every augmentation switched off."""
        return cls(
            speed=False,
            time_shift=False,
            reverb=False,
            background=False,
            phone=False,
            device_rate=False,
            gain=False,
            spec_augment=False,
        )

    @property
    def any_waveform(self) -> bool:
        return any(
            (
                self.speed,
                self.time_shift,
                self.reverb,
                self.background,
                self.phone,
                self.device_rate,
                self.gain,
            )
        )

    def spec_params(self) -> dict:
        """Keyword arguments for ``spec_augment`` / ``spec_augment_batch``."""
        return {
            "time_warp": self.time_warp,
            "freq_masks": self.freq_masks,
            "freq_width": self.freq_width,
            "time_masks": self.time_masks,
            "time_width": self.time_width,
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AugmentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown augmentation parameters: {sorted(unknown)}")
        if "device_rates" in data:  # a list once it went through JSON
            data = {**data, "device_rates": tuple(int(r) for r in data["device_rates"])}
        return cls(**data)


def augment_batch(cfg: AugmentConfig, x, generator):
    """SpecAugment a torch batch when ``cfg`` switches it on: each window with ``spec_augment_p``.

    Returns ``x`` itself (unchanged) when SpecAugment is off.
    """
    import torch

    if not cfg.spec_augment or cfg.spec_augment_p <= 0.0 or x.shape[0] == 0:
        return x
    augmented = spec_augment_batch(x, generator, **cfg.spec_params())
    if cfg.spec_augment_p >= 1.0:
        return augmented
    chosen = torch.rand(x.shape[0], generator=generator, device=x.device) < cfg.spec_augment_p
    return torch.where(chosen[:, None, None], augmented, x)


class WaveAugmenter:
    """Applies the enabled waveform augmentations of ``cfg`` to one clip.

    Order: speed, time shift, reverberation (synthetic room IR), background mix at a random SNR
    (from ``backgrounds``, skipped when there are none), phone channel, device rate, gain. Each
    step runs with its probability. Only the speed change alters the length (by its factor).
    """

    def __init__(
        self,
        cfg: AugmentConfig,
        backgrounds: list[np.ndarray] | None = None,
        rng: np.random.Generator | None = None,
        sr: int = MODEL_RATE,
    ) -> None:
        self.cfg = cfg
        self.backgrounds = [_mono(b) for b in (backgrounds or []) if np.asarray(b).size]
        self.rng = rng if rng is not None else np.random.default_rng()
        self.sr = sr

    def _chance(self, enabled: bool, p: float) -> bool:
        return enabled and self.rng.random() < p

    def __call__(self, x: np.ndarray) -> np.ndarray:
        cfg, rng, sr = self.cfg, self.rng, self.sr
        x = _mono(x)
        if not cfg.any_waveform:
            return x
        if self._chance(cfg.speed, cfg.speed_p):
            x = speed_tune(x, rng, cfg.speed_low, cfg.speed_high, sr)
        if self._chance(cfg.time_shift, cfg.time_shift_p):
            x = time_shift(x, rng, cfg.time_shift_max_s, sr)
        if self._chance(cfg.reverb, cfg.reverb_p):
            x = convolve_ir(x, synthetic_room_ir(rng, sr, (cfg.rt60_low, cfg.rt60_high)))
        if self.backgrounds and self._chance(cfg.background, cfg.background_p):
            noise = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            if noise.shape[0] > x.shape[0]:
                offset = int(rng.integers(0, noise.shape[0] - x.shape[0] + 1))
                noise = noise[offset : offset + x.shape[0]]
            x = mix_background(x, noise, float(rng.uniform(cfg.snr_low_db, cfg.snr_high_db)))
        if self._chance(cfg.phone, cfg.phone_p):
            x = phone_channel(x, rng, sr)
        if self._chance(cfg.device_rate, cfg.device_rate_p):
            x = device_rate(x, rng, cfg.device_rates, sr)
        if self._chance(cfg.gain, cfg.gain_p):
            x = random_gain(x, rng, (cfg.gain_low_db, cfg.gain_high_db))
        return x
