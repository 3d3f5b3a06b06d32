"""Augmentations: shapes, that each one changes the input, that each can be switched off."""

import numpy as np
import pytest
import scipy.signal
import torch

from detection.augment import (
    AugmentConfig,
    WaveAugmenter,
    augment_batch,
    convolve_ir,
    mix_background,
    phone_channel,
    random_gain,
    spec_augment,
    spec_augment_batch,
    speed_change,
    speed_tune,
    synthetic_room_ir,
    time_shift,
)
from detection.features import MODEL_RATE, FeatureConfig, level_dbfs, mel_columns

SR = MODEL_RATE


def signal(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A wavering tone with a little noise, quiet enough never to clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * (900 + 200 * np.sin(2 * np.pi * 3 * t)) * t)
    return (tone + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- waveform


def test_time_shift_rotates_without_losing_samples():
    x = signal()
    y = time_shift(x, rng(), max_shift_s=0.5)
    assert y.shape == x.shape and y.dtype == np.float32
    assert not np.array_equal(x, y)
    shift = int(rng().integers(-11025, 11026))  # the draw time_shift makes
    np.testing.assert_array_equal(np.roll(x, shift), y)
    np.testing.assert_array_equal(time_shift(x, rng(), max_shift_s=0.0), x)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_change_scales_length_and_pitch(factor):
    x = signal()
    y = speed_change(x, factor)
    assert y.dtype == np.float32
    assert abs(y.shape[0] - x.shape[0] / factor) <= 2
    # a pure 1 kHz tone comes out at factor x 1 kHz
    tone = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR).astype(np.float32)
    out = speed_change(tone, factor)
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SR / out.shape[0]
    assert abs(peak_hz - 1000 * factor) < 5


def test_speed_tune_draws_its_factor_from_the_range():
    x = signal()
    factor = np.random.default_rng(7).uniform(0.9, 1.1)
    y = speed_tune(x, rng(7), 0.9, 1.1)
    assert abs(y.shape[0] - x.shape[0] / factor) <= 2
    np.testing.assert_array_equal(y, speed_tune(x, rng(7), 0.9, 1.1))  # deterministic


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_mix_background_hits_the_requested_snr(snr):
    x = signal()
    noise = np.random.default_rng(3).standard_normal(SR // 3).astype(np.float32)  # looped
    y = mix_background(x, noise, snr)
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs(snr_db(x, y) - snr) < 0.5


def test_mix_background_crops_a_long_noise_and_ignores_silence():
    x = signal(1.0)
    noise = np.random.default_rng(3).standard_normal(5 * SR).astype(np.float32)
    assert abs(snr_db(x, mix_background(x, noise, 5.0)) - 5.0) < 0.5
    np.testing.assert_array_equal(mix_background(x, np.zeros(100, np.float32), 5.0), x)


def test_synthetic_room_ir_decays():
    ir = synthetic_room_ir(rng(), SR, rt60_range=(0.5, 0.5))
    assert ir.dtype == np.float32 and np.isfinite(ir).all()
    assert np.argmax(np.abs(ir)) == 0 and ir[0] == pytest.approx(1.0)
    early = np.sqrt(np.mean(ir[int(0.01 * SR) : int(0.06 * SR)] ** 2))
    late = np.sqrt(np.mean(ir[int(0.40 * SR) : int(0.45 * SR)] ** 2))
    # -60 dB per 0.5 s: 0.39 s later the tail is ~47 dB down
    assert 20 * np.log10(early / late) > 30


def test_convolve_ir_reverberates_at_the_same_level():
    x = signal()
    ir = synthetic_room_ir(rng(), SR)
    y = convolve_ir(x, ir)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert abs(level_dbfs(y) - level_dbfs(x)) < 0.1
    assert not np.allclose(x, y, atol=1e-3)
    # an impulse keeps the signal as it is (up to level)
    impulse = np.zeros(100, np.float32)
    impulse[0] = 1.0
    np.testing.assert_allclose(convolve_ir(x, impulse), x, atol=1e-6)


def test_random_gain_changes_level_within_range():
    x = signal()
    y = random_gain(x, rng(), (-12.0, -6.0))
    assert y.shape == x.shape and y.dtype == np.float32
    assert -12.01 <= level_dbfs(y) - level_dbfs(x) <= -5.99


def test_phone_channel_removes_low_and_high_bands():
    x = signal()
    rumble = 0.3 * np.sin(2 * np.pi * 40 * np.arange(x.shape[0]) / SR).astype(np.float32)
    hiss = 0.3 * np.sin(2 * np.pi * 10_500 * np.arange(x.shape[0]) / SR).astype(np.float32)
    for seed in range(6):
        y = phone_channel(x + rumble + hiss, rng(seed), SR)
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        spectrum = np.abs(np.fft.rfft(y))
        hz = np.fft.rfftfreq(y.shape[0], 1 / SR)

        def band(f, spectrum=spectrum, hz=hz):
            return spectrum[np.abs(hz - f) < 5].max()

        assert band(40) < 0.1 * band(900)
        assert band(10_500) < 0.2 * band(900)


# --------------------------------------------------------------------------- spectrogram


def window() -> np.ndarray:
    cfg = FeatureConfig()
    return mel_columns(signal(1.2), cfg)[:, : cfg.window_columns]


def test_spec_augment_masks_with_the_window_mean():
    spec = window()
    out = spec_augment(spec, rng(), time_warp=0, freq_masks=1, freq_width=20, time_masks=0)
    assert out.shape == spec.shape and out.dtype == np.float32
    changed_rows = np.where((out != spec).any(axis=1))[0]
    assert changed_rows.size > 0
    assert np.allclose(out[changed_rows], spec.mean())
    np.testing.assert_array_equal(spec, window())  # input untouched


def test_spec_augment_time_warp_keeps_the_edges():
    spec = window()
    out = spec_augment(spec, rng(2), time_warp=6, freq_masks=0, time_masks=0)
    assert not np.array_equal(out, spec)
    np.testing.assert_allclose(out[:, 0], spec[:, 0], atol=1e-4)
    np.testing.assert_allclose(out[:, -1], spec[:, -1], atol=1e-4)


def test_spec_augment_batch_is_per_window_and_deterministic():
    x = torch.from_numpy(np.stack([window()] * 32))
    gen = torch.Generator().manual_seed(0)
    y = spec_augment_batch(x, gen)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(x, y)
    assert torch.equal(x[0], torch.from_numpy(window()))  # input untouched
    # different windows got different augmentations
    assert not all(torch.equal(y[0], y[i]) for i in range(1, 32))
    again = spec_augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)


def test_spec_augment_batch_masks_take_each_window_mean():
    x = torch.randn(8, 64, 43)
    x += torch.arange(8).float()[:, None, None] * 10  # each window its own mean
    y = spec_augment_batch(
        x, torch.Generator().manual_seed(1), time_warp=0, freq_masks=2, time_masks=2
    )
    for i in range(8):
        masked = y[i] != x[i]
        if masked.any():
            assert torch.allclose(y[i][masked], x[i].mean(), atol=1e-4)


def test_spec_augment_batch_handles_short_windows():
    x = torch.randn(4, 16, 6)
    y = spec_augment_batch(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()


# --------------------------------------------------------------------------- configuration


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = AugmentConfig(speed_p=0.9, snr_low_db=5.0)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown augmentation parameters"):
        AugmentConfig.from_dict({"flip": True})


def always(**switches) -> AugmentConfig:
    """Everything off except ``switches``, each with probability 1."""
    on = {name: True for name in switches}
    probs = {f"{name}_p": 1.0 for name in switches}
    return AugmentConfig.from_dict({**AugmentConfig.none().to_dict(), **on, **probs})


@pytest.mark.parametrize(
    "name", ["speed", "time_shift", "reverb", "background", "phone", "device_rate", "gain"]
)
def test_each_waveform_augmentation_runs_alone_and_switches_off(name):
    x = signal()
    backgrounds = [np.random.default_rng(5).standard_normal(3 * SR).astype(np.float32)]
    y = WaveAugmenter(always(**{name: True}), backgrounds, rng())(x)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    assert y.shape != x.shape or not np.allclose(x, y)
    # the same switch with probability 0, or switched off, leaves the clip as it was
    off = AugmentConfig.from_dict({**always(**{name: True}).to_dict(), f"{name}_p": 0.0})
    np.testing.assert_array_equal(WaveAugmenter(off, backgrounds, rng())(x), x)
    np.testing.assert_array_equal(WaveAugmenter(AugmentConfig.none(), backgrounds, rng())(x), x)


def test_wave_augmenter_is_deterministic_given_the_rng():
    x = signal()
    backgrounds = [np.random.default_rng(5).standard_normal(3 * SR).astype(np.float32)]
    cfg = AugmentConfig()
    first = [WaveAugmenter(cfg, backgrounds, rng(9))(x) for _ in range(2)]
    np.testing.assert_array_equal(*first)


def test_background_without_clips_is_skipped():
    x = signal()
    np.testing.assert_array_equal(WaveAugmenter(always(background=True), [], rng())(x), x)


def test_augment_batch_follows_the_switch():
    x = torch.randn(16, 64, 43)
    gen = torch.Generator().manual_seed(0)
    assert augment_batch(AugmentConfig.none(), x, gen) is x
    assert augment_batch(AugmentConfig(spec_augment_p=0.0), x, gen) is x
    y = augment_batch(AugmentConfig(spec_augment_p=1.0), x, gen)
    assert not torch.equal(x, y)
    half = augment_batch(AugmentConfig(spec_augment_p=0.5), x, torch.Generator().manual_seed(3))
    untouched = sum(torch.equal(half[i], x[i]) for i in range(16))
    assert 0 < untouched < 16


def test_device_round_trip_empties_the_band_above_the_device_nyquist_and_stays_aligned():
    from detection.augment import device_round_trip

    noise = np.random.default_rng(3).standard_normal(3 * SR).astype(np.float32) * 0.1
    y = device_round_trip(noise, 16_000, SR)
    assert y.shape == noise.shape and y.dtype == np.float32
    freqs, before = scipy.signal.welch(noise, SR, nperseg=4096)
    after = scipy.signal.welch(y, SR, nperseg=4096)[1]
    top = freqs > 8_100
    assert 10 * np.log10(after[top].sum() / before[top].sum()) < -80
    # below the device's pass band edge the clip is unchanged and not shifted in time (the
    # two resamplers' delays are taken out to the nearest sample: within 23 us)
    t = np.arange(2 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    back = device_round_trip(tone, 16_000, SR)[2000:-2000]
    lags = range(-3, 4)
    best = max(lags, key=lambda k: float(np.dot(back, np.roll(tone, k)[2000:-2000])))
    assert best == 0
    assert np.max(np.abs(back - tone[2000:-2000])) < 0.04
    np.testing.assert_array_equal(device_round_trip(noise, SR, SR), noise)
