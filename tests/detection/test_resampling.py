"""The polyphase resampler: exact streaming, accuracy, a hold no longer than its look-ahead."""

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr

from detection.artifacts import load_model
from detection.features import FeatureConfig, frame_windows, mel_columns, resample
from detection.resampling import (
    INPUT_LIMIT,
    PolyphaseResampler,
    polyphase_plan,
    sanitize,
)

MODEL_RATE = 22_050
# The usual device rates, 22,050 itself, and odd rates whose period is longer than a frame.
RATES = [8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 15_999, 47_999]


def noise(seconds: float, rate: int, seed: int = 0, level: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def streamed(audio: np.ndarray, rate: int, sizes) -> np.ndarray:
    resampler, parts, i = PolyphaseResampler(rate, MODEL_RATE), [], 0
    for n in sizes:
        if i >= audio.size:
            break
        parts.append(resampler.resample_chunk(audio[i : i + n]))
        i += n
    parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(parts)


def random_sizes(seed: int, high: int = 5000):
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(1, high))


@pytest.mark.parametrize("rate", RATES)
def test_stream_equals_batch_bit_for_bit_in_any_chunks(rate):
    # Loud on purpose (peaks past full scale): rounding differences would show here first.
    audio = noise(1.5, rate, seed=rate, level=0.8)
    batch = resample(audio, rate, MODEL_RATE)
    assert batch.dtype == np.float32
    delay = PolyphaseResampler(rate, MODEL_RATE).delay_samples
    assert batch.size == -(-(audio.size + delay) * MODEL_RATE // rate)  # the filter's tail too
    for sizes in (random_sizes(1), random_sizes(2, high=40), iter([3200] * 1000)):
        assert np.array_equal(streamed(audio, rate, sizes), batch)


def test_single_samples_stream_exactly():
    audio = noise(0.05, 16_000, seed=3)
    assert np.array_equal(
        streamed(audio, 16_000, iter([1] * audio.size)), resample(audio, 16_000, 22_050)
    )


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000, 15_999])
def test_a_tone_keeps_its_pitch_level_and_timing(rate):
    t = np.arange(2 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = resample(tone, rate, MODEL_RATE)
    delay_s = PolyphaseResampler(rate, MODEL_RATE).delay_s
    assert 0 < delay_s <= 0.011
    expected = 0.5 * np.sin(2 * np.pi * 1000 * (np.arange(out.size) / MODEL_RATE - delay_s))
    # Exactly the stated delay and no gain error: within 1e-5 of the ideal tone.
    assert np.max(np.abs(out - expected)[1000:-1000]) < 1e-5


def band_db(audio: np.ndarray, rate: int, low: float, high: float, ref: float) -> float:
    freqs, power = scipy.signal.welch(audio, rate, nperseg=4096)
    band = (freqs >= low) & (freqs <= high)
    return float(10 * np.log10(power[band].max() / ref))


def test_upsampling_16k_leaves_no_image_above_8k_and_a_flat_pass_band():
    audio = noise(20, 16_000, seed=5)
    out = resample(audio, 16_000, MODEL_RATE)
    freqs, power = scipy.signal.welch(out, MODEL_RATE, nperseg=4096)
    ref = float(np.median(power[(freqs > 500) & (freqs < 6000)]))
    assert band_db(out, MODEL_RATE, 8_050, 11_000, ref) < -90  # images of 0-8 kHz
    t = np.arange(16_000) / 16_000
    for hz in (100, 1_000, 3_000, 5_000, 6_500, 7_000):
        tone = resample(np.sin(2 * np.pi * hz * t).astype(np.float32), 16_000, MODEL_RATE)
        gain_db = 20 * np.log10(np.sqrt(2 * np.mean(np.square(tone[2000:-2000]))))
        assert abs(gain_db) < 0.02, (hz, gain_db)  # a flat pass band up to 7 kHz


@pytest.mark.parametrize("hz", [11_100, 13_000, 17_000, 23_000])
def test_downsampling_48k_removes_what_would_alias(hz):
    # A tone above the model's Nyquist would fold into 0-11 kHz: nothing of it may remain.
    t = np.arange(48_000) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    out = resample(tone, 48_000, MODEL_RATE)[1000:-1000]
    assert 10 * np.log10(np.mean(np.square(out)) / 0.125) < -95


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000, 15_999])
def test_each_frame_releases_all_of_its_own_audio(rate):
    """The reason for this resampler: after a 200 ms frame, every output sample up to the
    frame's last input sample is out (soxr's HQ held back up to 1,273 at 16 kHz), so a window
    never waits for the next frame."""
    resampler = PolyphaseResampler(rate, MODEL_RATE)
    released = 0
    for frame in np.array_split(noise(4, rate), 20):
        released += resampler.resample_chunk(frame).size
        assert resampler.pending_output <= 1
        assert released >= resampler.samples_in * MODEL_RATE / rate - 1


def test_close_to_soxr_hq_on_a_real_recording_at_16k(real_v1):
    """The features the shipped model sees from a 16 kHz device barely move against the
    previous resampler (soxr HQ, given the same delay): its scores differ by less than 0.05
    on a real scream."""
    model = load_model("detection/shipped/default")
    cfg: FeatureConfig = model.features
    path = sorted((real_v1 / "audio" / "yt-scream-sfx").glob("*.flac"))[0]
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    device = soxr.resample(audio.mean(axis=1), rate, 16_000, quality="HQ")
    ours = resample(device, 16_000, MODEL_RATE)
    # soxr has no delay: give it the same 5 ms of silence first, to compare the same windows.
    delayed = np.concatenate(
        [np.zeros(PolyphaseResampler(16_000, MODEL_RATE).delay_samples), device]
    )
    theirs = soxr.resample(delayed.astype(np.float32), 16_000, MODEL_RATE, quality="HQ")
    n = min(ours.size, theirs.size)

    def scores(x):
        return model.predict(frame_windows(mel_columns(x[:n], cfg), cfg, 4))

    a, b = scores(ours), scores(theirs)
    assert a.max() > model.threshold  # the scream is heard through either
    assert np.max(np.abs(a - b)) < 0.05


def test_input_is_clipped_and_nan_silenced():
    x = np.array([0.1, -0.3, 10.0, -np.inf, np.nan, 1e-9], dtype=np.float32)
    clean = sanitize(x)
    assert clean.dtype == np.float32
    assert clean.tolist() == pytest.approx([0.1, -0.3, INPUT_LIMIT, -INPUT_LIMIT, 0.0, 1e-9])


def test_a_nan_spoils_no_sample_before_it_arrives():
    # Samples already emitted must not change when a broken sample comes later.
    audio = noise(0.5, 16_000, seed=4)
    broken = audio.copy()
    broken[6000] = np.nan
    clean_first = streamed(audio[:5000], 16_000, iter([5000]))
    out = resample(broken, 16_000, 22_050)
    assert np.all(np.isfinite(out))
    assert np.array_equal(out[: clean_first.size - 200], clean_first[:-200])


def test_stream_misuse_is_refused():
    resampler = PolyphaseResampler(16_000, MODEL_RATE)
    with pytest.raises(ValueError, match="mono"):
        resampler.resample_chunk(np.zeros((10, 2), np.float32))
    resampler.resample_chunk(np.zeros(100, np.float32), last=True)
    with pytest.raises(RuntimeError, match="ended"):
        resampler.resample_chunk(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="positive"):
        polyphase_plan(0, MODEL_RATE)


def test_same_rate_is_the_identity():
    audio = noise(0.3, MODEL_RATE, seed=9)
    out = resample(audio, MODEL_RATE, MODEL_RATE)
    assert np.array_equal(out, audio)
