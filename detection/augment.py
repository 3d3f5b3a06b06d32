"""Training augmentations: the seed's five plus level, channel and field simulation.

Waveform functions take mono float32 audio at the model rate (22,050 Hz) and a
``numpy.random.Generator``; they are pure (the input is never modified) and deterministic given
the generator's state. This module holds the seed's (speed, time shift, synthetic room IR,
background mix), the phone channel, device rate and gain; ``field_augment`` the microphone,
AGC, compression, codec, clipping and level ones; ``rooms`` the image-source rooms.
``WaveAugmenter`` applies the ones switched on in an ``AugmentConfig``, in its documented order.

SpecAugment (``spec_augment``; ``spec_augment_batch`` per training batch) acts on feature
windows; ``augment_batch`` applies it only when the config switches it on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import scipy.signal
import soxr

from .features import MODEL_RATE
from .field_augment import (
    random_automatic_gain,
    random_clipping,
    random_codec,
    random_compression,
    random_mic_eq,
    whisper_to_saturation,
)
from .resampling import PolyphaseResampler
from .rooms import ROOM_PRESETS, draw_rir
from .spec_augment import spec_augment as spec_augment  # re-exported: its own module now
from .spec_augment import spec_augment_batch
from .waveform import fit_length as _fit_length
from .waveform import mono as _mono
from .waveform import rms as _rms

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


def room_reverb(
    x: np.ndarray,
    rng: np.random.Generator,
    presets: tuple[str, ...] = tuple(ROOM_PRESETS),
    pool: int = 8,
    sr: int = MODEL_RATE,
) -> np.ndarray:
    """Reverberation of a simulated room: an impulse response drawn from the image-source
    pools of ``presets`` (``rooms``), applied by ``convolve_ir`` (same length and RMS)."""
    return convolve_ir(x, draw_rir(rng, tuple(presets), pool, sr))


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
    snr_low_db: float = 0.0  # the field preset: -5 (noise louder than the scream)
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
    # Field realism (``rooms``, ``field_augment``). Off by default, so that a model's stored
    # configuration without these keys means what it meant; ``AugmentConfig.field()`` turns
    # them on.
    rooms: bool = False  # image-source rooms; when drawn, instead of the synthetic IR
    rooms_p: float = 0.4
    room_presets: tuple[str, ...] = tuple(ROOM_PRESETS)
    room_pool: int = 8  # impulse responses computed per preset (once per process)
    mic_eq: bool = False
    mic_eq_p: float = 0.5
    level: bool = False  # peak from a whisper to driven past full scale, 16-bit
    level_p: float = 0.5
    level_low_db: float = -30.0
    level_high_db: float = 12.0
    clipping: bool = False
    clipping_p: float = 0.15
    clip_drive_low_db: float = 3.0
    clip_drive_high_db: float = 20.0
    agc: bool = False
    agc_p: float = 0.3
    compression: bool = False
    compression_p: float = 0.3
    codec: bool = False
    codec_p: float = 0.3

    @classmethod
    def field(cls, **changes) -> AugmentConfig:
        """The defaults plus every field simulation, the level range (-30 dBFS to saturation)
        in place of the random gain, and backgrounds from -5 to 20 dB SNR."""
        return cls(
            **{
                "rooms": True,
                "mic_eq": True,
                "level": True,
                "clipping": True,
                "agc": True,
                "compression": True,
                "codec": True,
                "gain": False,
                "snr_low_db": -5.0,
                **changes,
            }
        )

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
            rooms=False,
            mic_eq=False,
            level=False,
            clipping=False,
            agc=False,
            compression=False,
            codec=False,
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
                self.rooms,
                self.mic_eq,
                self.level,
                self.clipping,
                self.agc,
                self.compression,
                self.codec,
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
        if "room_presets" in data:
            unknown_rooms = set(data["room_presets"]) - set(ROOM_PRESETS)
            if unknown_rooms or not data["room_presets"]:
                raise ValueError(f"room presets must be some of {sorted(ROOM_PRESETS)}")
            data = {**data, "room_presets": tuple(str(r) for r in data["room_presets"])}
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

    Order, from the source to the network, each step with its probability:

    1. speed; 2. time shift (the sound itself);
    3. reverberation: an image-source room (``rooms``) or else the synthetic room IR;
    4. background mix at a random SNR (from ``backgrounds``, skipped when there are none);
    5. microphone EQ; 6. phone channel (band limit, low-rate trip, saturation);
    7. level, from a whisper to driven past full scale (16-bit); 8. clipping;
    9. automatic gain control; 10. compression (the phone's processing);
    11. codec round trip; 12. device rate; 13. gain.

    A step switched off draws nothing from the generator, so a configuration without the
    field steps gives the same clips as before they existed. Only the speed change alters the
    length (by its factor).
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
        if self._chance(cfg.rooms, cfg.rooms_p):
            x = room_reverb(x, rng, cfg.room_presets, cfg.room_pool, sr)
        elif self._chance(cfg.reverb, cfg.reverb_p):
            x = convolve_ir(x, synthetic_room_ir(rng, sr, (cfg.rt60_low, cfg.rt60_high)))
        if self.backgrounds and self._chance(cfg.background, cfg.background_p):
            noise = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            if noise.shape[0] > x.shape[0]:
                offset = int(rng.integers(0, noise.shape[0] - x.shape[0] + 1))
                noise = noise[offset : offset + x.shape[0]]
            x = mix_background(x, noise, float(rng.uniform(cfg.snr_low_db, cfg.snr_high_db)))
        if self._chance(cfg.mic_eq, cfg.mic_eq_p):
            x = random_mic_eq(x, rng, sr)
        if self._chance(cfg.phone, cfg.phone_p):
            x = phone_channel(x, rng, sr)
        if self._chance(cfg.level, cfg.level_p):
            x = whisper_to_saturation(x, rng, cfg.level_low_db, cfg.level_high_db)
        if self._chance(cfg.clipping, cfg.clipping_p):
            x = random_clipping(x, rng, (cfg.clip_drive_low_db, cfg.clip_drive_high_db))
        if self._chance(cfg.agc, cfg.agc_p):
            x = random_automatic_gain(x, rng, sr)
        if self._chance(cfg.compression, cfg.compression_p):
            x = random_compression(x, rng, sr)
        if self._chance(cfg.codec, cfg.codec_p):
            x = random_codec(x, rng, sr)
        if self._chance(cfg.device_rate, cfg.device_rate_p):
            x = device_rate(x, rng, cfg.device_rates, sr)
        if self._chance(cfg.gain, cfg.gain_p):
            x = random_gain(x, rng, (cfg.gain_low_db, cfg.gain_high_db))
        return x
