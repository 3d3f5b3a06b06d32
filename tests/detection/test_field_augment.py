"""Field realism: microphone EQ, AGC, compression, codecs, clipping, level, simulated rooms;
each one's documented effect, purity, determinism, and the configuration that switches them."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from django.core.management import call_command

from detection import augment as a
from detection.augment import AugmentConfig, WaveAugmenter, mix_background, room_reverb
from detection.dataset import Segment, write_labels
from detection.features import MODEL_RATE
from detection.field_augment import (
    automatic_gain,
    biquad,
    clip,
    codec_round_trip,
    compress,
    mic_eq,
    random_automatic_gain,
    random_clipping,
    random_codec,
    random_compression,
    random_mic_eq,
    whisper_to_saturation,
)
from detection.rooms import ROOM_PRESETS, rir_pool

SR = MODEL_RATE
SHIPPED = Path(__file__).resolve().parents[2] / "detection" / "shipped" / "default"


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def voice_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding 400 Hz pitch up to 10 kHz with a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 400 + 100 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.2 * x / np.max(np.abs(x)) + noise).astype(np.float32)


def band_energy(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(x.shape[0], 1 / SR)
    return float(spectrum[(hz >= low) & (hz < high)].sum())


def level_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def crest_factor(x: np.ndarray) -> float:
    return float(np.max(np.abs(x)) / np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def energy_decay_time(y: np.ndarray, start: int, drop_db: float = 20.0) -> float:
    """Seconds from ``start`` until the backward-integrated energy (Schroeder) falls by
    ``drop_db``."""
    tail = y[start:].astype(np.float64) ** 2
    edc = np.cumsum(tail[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    return float(np.argmax(edc_db <= -drop_db)) / SR


RANDOM_STEPS = {
    "mic_eq": lambda x, g: random_mic_eq(x, g),
    "agc": lambda x, g: random_automatic_gain(x, g),
    "compression": lambda x, g: random_compression(x, g),
    "codec": lambda x, g: random_codec(x, g),
    "clipping": lambda x, g: random_clipping(x, g),
    "level": lambda x, g: whisper_to_saturation(x, g),
    "room": lambda x, g: room_reverb(x, g, pool=2),
}


@pytest.mark.parametrize("name", sorted(RANDOM_STEPS))
def test_each_step_keeps_shape_is_pure_and_deterministic(name):
    x = voice_like()
    before = x.copy()
    y = RANDOM_STEPS[name](x, rng(3))
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.allclose(x, y, atol=1e-4)
    np.testing.assert_array_equal(x, before)  # the input is not modified
    np.testing.assert_array_equal(y, RANDOM_STEPS[name](x, rng(3)))
    assert RANDOM_STEPS[name](np.zeros(0, np.float32), rng(3)).shape == (0,)


# --------------------------------------------------------------------------- microphone EQ


def test_a_peaking_filter_boosts_its_band_and_leaves_others():
    x = tone(3000) + tone(300)
    y = mic_eq(x, [("peak", 3000.0, 10.0, 2.0)])
    gain_3k = 10 * np.log10(band_energy(y, 2900, 3100) / band_energy(x, 2900, 3100))
    gain_300 = 10 * np.log10(band_energy(y, 250, 350) / band_energy(x, 250, 350))
    assert gain_3k == pytest.approx(10.0, abs=0.5)
    assert abs(gain_300) < 0.5


def test_shelves_cut_their_side_of_the_spectrum():
    x = tone(60) + tone(1000) + tone(9000)
    y = mic_eq(x, [("lowshelf", 300.0, -12.0, 0.707), ("highshelf", 6000.0, -12.0, 0.707)])
    ratio = {f: band_energy(y, f - 20, f + 20) / band_energy(x, f - 20, f + 20) for f in (60, 1000)}
    assert 10 * np.log10(ratio[60]) < -10
    assert abs(10 * np.log10(ratio[1000])) < 1.5
    assert 10 * np.log10(band_energy(y, 8900, 9100) / band_energy(x, 8900, 9100)) < -10
    with pytest.raises(ValueError):
        biquad("notch", 1000.0, 0.0, 1.0)


# --------------------------------------------------------------------------- level processing


def test_agc_narrows_the_level_range_between_a_quiet_and_a_loud_half():
    quiet, loud = tone(800, 2.0, amp=0.003), tone(800, 2.0, amp=0.3)  # 40 dB apart
    x = np.concatenate([quiet, loud])
    y = automatic_gain(x, target_db=-20.0, attack_s=0.01, release_s=0.3)
    half = quiet.shape[0]
    settle = int(0.5 * SR)  # after the follower has caught up
    before = level_db(x[half + settle :]) - level_db(x[settle:half])
    after = level_db(y[half + settle :]) - level_db(y[settle:half])
    assert before == pytest.approx(40.0, abs=0.1)
    assert after < 5.0
    assert level_db(y[half + settle :]) == pytest.approx(-20.0, abs=1.5)


def test_compression_reduces_the_crest_factor_and_keeps_the_rms():
    t = np.arange(2 * SR) / SR
    envelope_db = -40 + 40 * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))  # syllable-like swells
    x = (0.9 * 10 ** (envelope_db / 20) * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    y = compress(x, threshold_db=-20.0, ratio=8.0)
    assert crest_factor(y) < 0.85 * crest_factor(x)
    assert level_db(y) == pytest.approx(level_db(x), abs=0.01)
    # a clip entirely below the threshold passes unchanged
    np.testing.assert_allclose(compress(0.01 * x, threshold_db=-20.0, ratio=8.0), 0.01 * x)
    with pytest.raises(ValueError):
        compress(x, ratio=0.5)


# --------------------------------------------------------------------------- codec


@pytest.mark.parametrize("codec,rate", [("opus", 16_000), ("opus", 8_000), ("ulaw", 8_000)])
def test_codec_changes_the_signal_and_keeps_its_energy_below_the_band(codec, rate):
    x = voice_like() + 0.05 * tone(9500, 2.0)
    y = codec_round_trip(x, codec, rate, level=1.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert not np.allclose(x, y, atol=1e-3)
    nyquist = rate / 2
    kept = band_energy(y, 50, 0.9 * nyquist) / band_energy(x, 50, 0.9 * nyquist)
    assert kept > 0.5  # most of the band survives
    assert band_energy(y, nyquist * 1.05, SR / 2) < 1e-3 * band_energy(x, nyquist * 1.05, SR / 2)
    # aligned on the input (no codec delay left)
    lag = np.argmax(np.correlate(y[2000:6000], x[2000:6000], "full")) - 3999
    assert abs(lag) <= 2


# --------------------------------------------------------------------------- clipping, level


@pytest.mark.parametrize("soft", [False, True])
def test_clipping_bounds_the_peak_by_the_clip_level(soft):
    x = voice_like() * 4
    y = clip(x, 0.25, soft=soft)
    assert np.max(np.abs(y)) <= 0.25 + 1e-7
    if not soft:
        assert np.sum(np.abs(y) >= 0.25 - 1e-7) > 100  # flat tops
    for seed in range(5):
        g = rng(seed)
        drive = g.uniform(3.0, 20.0)  # the draw random_clipping makes first
        bound = np.max(np.abs(x)) * 10 ** (-drive / 20)
        assert np.max(np.abs(random_clipping(x, rng(seed)))) <= bound + 1e-6


def test_level_reaches_from_a_whisper_to_saturation():
    x = voice_like()
    peaks = [np.max(np.abs(whisper_to_saturation(x, rng(s)))) for s in range(40)]
    assert min(peaks) < 10 ** (-20 / 20)  # some far below full scale
    assert max(peaks) <= 1.0  # driven into the clipper, never past full scale
    assert sum(p >= 0.999 for p in peaks) >= 5  # several saturated
    y = whisper_to_saturation(x, rng(0))
    np.testing.assert_allclose(y * 32767, np.round(y * 32767), atol=1e-2)  # 16-bit grid
    quiet = whisper_to_saturation(x, rng(0), low_db=-30.0, high_db=-30.0)
    assert 20 * np.log10(np.max(np.abs(quiet))) == pytest.approx(-30.0, abs=0.1)


# --------------------------------------------------------------------------- rooms


@pytest.mark.parametrize("preset", sorted(ROOM_PRESETS))
def test_room_reverberation_lengthens_the_decay_of_an_impulse(preset):
    x = np.zeros(2 * SR, np.float32)
    start = int(0.1 * SR)
    x[start] = 1.0
    dry = energy_decay_time(x, start)
    wet = room_reverb(x, rng(0), (preset,), pool=2)
    assert wet.shape == x.shape and np.isfinite(wet).all()
    assert dry < 1e-3
    assert energy_decay_time(wet, start - 10) > 0.02  # the tail holds energy for a while


def test_rooms_differ_as_their_places_do():
    """A station hall decays far slower than an alley open to the sky."""

    def decay(name):
        irs = rir_pool(name, 2)
        return np.median([energy_decay_time(ir, int(np.argmax(np.abs(ir)))) for ir in irs])

    assert decay("station_hall") > 2 * decay("alley")
    assert decay("tiled_restroom") > 0.05


def test_rir_pool_is_cached_and_reproducible():
    assert rir_pool("alley", 2) is rir_pool("alley", 2)
    with pytest.raises(ValueError, match="unknown room preset"):
        rir_pool("cathedral", 2)


# --------------------------------------------------------------------------- mixing


@pytest.mark.parametrize("snr", [-5.0, 0.0, 20.0])
def test_snr_mixing_gives_the_requested_snr_down_to_minus_five(snr):
    x = voice_like()
    noise = np.random.default_rng(4).standard_normal(x.shape[0]).astype(np.float32)
    y = mix_background(x, noise, snr)
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x) ** 2))
    assert measured == pytest.approx(snr, abs=0.5)


# --------------------------------------------------------------------------- configuration


FIELD_SWITCHES = ["rooms", "mic_eq", "level", "clipping", "agc", "compression", "codec"]


def test_field_config_round_trips_and_old_configs_still_load():
    cfg = AugmentConfig.field(room_presets=("alley",), codec_p=0.7)
    back = AugmentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))  # as in config.json
    assert back == cfg and back.room_presets == ("alley",)
    assert cfg.snr_low_db == -5.0 and not cfg.gain
    assert all(getattr(cfg, name) for name in FIELD_SWITCHES)
    # a stored configuration from before these keys: the new steps stay off
    field_keys = ("rooms", "room_", "mic_eq", "level", "clip", "agc", "compression", "codec")
    old = {k: v for k, v in AugmentConfig().to_dict().items() if not k.startswith(field_keys)}
    assert "rooms" not in old and "speed" in old
    loaded = AugmentConfig.from_dict(old)
    assert not any(getattr(loaded, name) for name in FIELD_SWITCHES)
    with pytest.raises(ValueError, match="room presets"):
        AugmentConfig.from_dict({"room_presets": ["cathedral"]})


def test_a_stored_augmentation_without_the_field_steps_still_loads():
    """The shipped model was trained with the default augmentation (every field step off); a
    model trained before the field steps existed stored none of their keys and loads alike."""
    stored = json.loads((SHIPPED / "config.json").read_text())["training"]["augmentation"]
    assert not any(stored[name] for name in FIELD_SWITCHES)
    defaults = AugmentConfig().to_dict()
    older = {
        k: v
        for k, v in stored.items()
        if not any(k == name or k.startswith(name + "_") for name in FIELD_SWITCHES)
    }
    assert "rooms" not in older
    cfg = AugmentConfig.from_dict(older)
    assert set(cfg.to_dict()) == set(defaults)
    assert not any(getattr(cfg, name) for name in FIELD_SWITCHES)


def always(**switches) -> AugmentConfig:
    on = {name: True for name in switches}
    probs = {f"{name}_p": 1.0 for name in switches}
    return AugmentConfig.from_dict({**AugmentConfig.none().to_dict(), **on, **probs})


@pytest.mark.parametrize("name", FIELD_SWITCHES)
def test_the_augmenter_applies_each_field_step_alone_and_switches_it_off(name):
    x = voice_like()
    y = WaveAugmenter(always(**{name: True}), None, rng())(x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.allclose(x, y, atol=1e-4)
    off = AugmentConfig.from_dict({**always(**{name: True}).to_dict(), f"{name}_p": 0.0})
    np.testing.assert_array_equal(WaveAugmenter(off, None, rng())(x), x)


def test_old_configurations_draw_the_same_clips_as_before_the_field_steps():
    """Switched-off field steps draw nothing from the generator: the defaults' clips are
    those of the recipe before them (the cached augmented copies stay valid)."""
    x = voice_like()
    backgrounds = [np.random.default_rng(5).standard_normal(3 * SR).astype(np.float32)]
    y = WaveAugmenter(AugmentConfig(), backgrounds, rng(11))(x)
    g = rng(11)
    cfg = AugmentConfig()
    expected = x
    # replay the pre-field order by hand with the same draws
    if g.random() < cfg.speed_p:
        expected = a.speed_tune(expected, g, cfg.speed_low, cfg.speed_high)
    if g.random() < cfg.time_shift_p:
        expected = a.time_shift(expected, g, cfg.time_shift_max_s)
    if g.random() < cfg.reverb_p:
        expected = a.convolve_ir(
            expected, a.synthetic_room_ir(g, SR, (cfg.rt60_low, cfg.rt60_high))
        )
    if g.random() < cfg.background_p:
        noise = backgrounds[int(g.integers(1))]
        if noise.shape[0] > expected.shape[0]:
            offset = int(g.integers(0, noise.shape[0] - expected.shape[0] + 1))
            noise = noise[offset : offset + expected.shape[0]]
        expected = a.mix_background(
            expected, noise, float(g.uniform(cfg.snr_low_db, cfg.snr_high_db))
        )
    if g.random() < cfg.phone_p:
        expected = a.phone_channel(expected, g)
    if g.random() < cfg.device_rate_p:
        expected = a.device_rate(expected, g, cfg.device_rates)
    if g.random() < cfg.gain_p:
        expected = a.random_gain(expected, g, (cfg.gain_low_db, cfg.gain_high_db))
    np.testing.assert_array_equal(y, expected)


def test_train_with_the_field_preset_stores_it_with_the_model(tmp_path):
    torch.set_num_threads(1)
    t = np.arange(int(2.5 * SR)) / SR
    for i in range(2):
        soundfile.write(str(tmp_path / f"s{i}.wav"), 0.3 * np.sin(2 * np.pi * 2000 * t), SR)
        write_labels(tmp_path / f"s{i}.txt", [Segment(0.2, 2.3, "1")])
        noise = 0.05 * np.random.default_rng(i).standard_normal(t.size)
        soundfile.write(str(tmp_path / f"n{i}.wav"), noise, SR)
        write_labels(tmp_path / f"n{i}.txt", [Segment(0.0, 2.5, "0_2")])
    out = tmp_path / "model"
    call_command(
        "train", "--data", str(tmp_path), "--out", str(out), "--epochs", "1", "--no-cv",
        "--aug-copies", "1", "--augment-preset", "field", "--augment", '{"room_pool": 2}',
        "--no-codec", "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--threads", "1",
    )  # fmt: skip
    stored = json.loads((out / "config.json").read_text())["training"]["augmentation"]
    assert AugmentConfig.from_dict(stored) == AugmentConfig.field(room_pool=2, codec=False)
