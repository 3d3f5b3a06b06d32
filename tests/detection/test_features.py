"""The one feature implementation: batch == streaming, resampling, shapes."""

import numpy as np
import pytest
import soundfile as sf

from detection.features import (
    FeatureConfig,
    StreamingFeatures,
    WindowCutter,
    file_columns,
    frame_windows,
    level_dbfs,
    mel_columns,
    n_columns,
    normalize_windows,
    pad_short,
    resample,
    to_mono,
    window_samples,
    window_starts,
)

CFG = FeatureConfig()


def chirp(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A rising tone plus a little noise: structure in every mel band, not just noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    x = (tone + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)
    if channels == 2:
        return np.stack([x, 0.5 * x], axis=1)
    return x


def stream(audio: np.ndarray, rate: int, sizes, cfg: FeatureConfig = CFG) -> np.ndarray:
    front = StreamingFeatures(cfg, rate)
    out, i = [], 0
    sizes = iter(sizes)
    while i < audio.shape[0]:
        n = next(sizes)
        out.append(front.push(audio[i : i + n]))
        i += n
    out.append(front.flush())
    return np.concatenate(out, axis=1)


def fixed(n):
    while True:
        yield n


def random_sizes(seed):
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(1, 6000))


@pytest.mark.parametrize("rate", [22_050, 16_000, 44_100, 8_000, 48_000])
@pytest.mark.parametrize("chunk", [1, 37, 512, 4410, "random"])
def test_streaming_equals_batch(rate, chunk):
    seconds = 1.3 if chunk == 1 else 3.0
    audio = chirp(seconds, rate)
    batch = file_columns(audio, rate, CFG)
    sizes = random_sizes(rate) if chunk == "random" else fixed(chunk)
    streamed = stream(audio, rate, sizes)
    assert streamed.shape == batch.shape
    assert batch.shape[1] > 0
    assert np.max(np.abs(streamed - batch)) <= 1e-5


@pytest.mark.parametrize("n_fft,hop", [(512, 512), (2048, 2048), (4096, 4096), (1024, 256)])
def test_streaming_equals_batch_for_seed_framings(n_fft, hop):
    cfg = FeatureConfig(n_fft=n_fft, hop_length=hop)
    audio = chirp(3.0, 16_000)
    batch = file_columns(audio, 16_000, cfg)
    streamed = stream(audio, 16_000, random_sizes(1), cfg)
    assert streamed.shape == batch.shape
    assert np.max(np.abs(streamed - batch)) <= 1e-5


def test_stereo_is_downmixed_before_features():
    stereo = chirp(2.0, 44_100, channels=2)
    mono = stereo.mean(axis=1)
    np.testing.assert_allclose(
        file_columns(stereo, 44_100, CFG), file_columns(mono, 44_100, CFG), atol=1e-5
    )
    streamed = stream(stereo, 44_100, random_sizes(2))
    np.testing.assert_allclose(streamed, file_columns(stereo, 44_100, CFG), atol=1e-5)


def test_resample_keeps_duration_and_pitch():
    rate = 16_000
    t = np.arange(rate * 2) / rate
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    out = resample(tone, rate, 22_050)
    # Two seconds, plus the resampler's tail (it delays by half its filter, ~5 ms).
    assert 0 <= out.shape[0] - 2 * 22_050 <= 0.011 * 22_050
    spectrum = np.abs(np.fft.rfft(out[2000:-2000]))
    peak_hz = np.argmax(spectrum) * 22_050 / (out.shape[0] - 4000)
    assert abs(peak_hz - 1000) < 5


def test_shapes_match_the_seed_framings():
    one_second = chirp(1.1, 22_050)
    for n_fft, cols in [(512, 43), (2048, 11), (4096, 5)]:
        cfg = FeatureConfig(n_fft=n_fft, hop_length=n_fft)
        assert cfg.window_columns == cols
        columns = mel_columns(one_second[: window_samples(cfg)], cfg)
        assert columns.shape == (64, cols)
        assert columns.dtype == np.float32


def test_windows_strides_and_starts():
    columns = mel_columns(chirp(5.0, 22_050), CFG)
    stride = CFG.stride_columns(0.1)
    assert stride == 4
    windows = frame_windows(columns, CFG, stride)
    starts = window_starts(columns.shape[1], CFG, stride)
    assert windows.shape == (starts.size, 64, CFG.window_columns)
    k = starts.size // 2
    np.testing.assert_array_equal(
        windows[k], columns[:, starts[k] : starts[k] + CFG.window_columns]
    )
    assert CFG.stride_columns(0.2) == 9 and CFG.stride_columns(0.3) == 13


def test_window_cutter_matches_offline_windows():
    audio = chirp(4.0, 16_000)
    columns = file_columns(audio, 16_000, CFG)
    stride = CFG.stride_columns(0.1)
    offline = frame_windows(columns, CFG, stride)
    front, cutter, live = StreamingFeatures(CFG, 16_000), WindowCutter(CFG, stride), []
    for i in range(0, audio.shape[0], 3200):
        live.extend(cutter.push(front.push(audio[i : i + 3200])))
    live.extend(cutter.push(front.flush()))
    assert [s for s, _ in live] == list(window_starts(columns.shape[1], CFG, stride))
    np.testing.assert_allclose(np.stack([w for _, w in live]), offline, atol=1e-5)


def test_window_cutter_with_stride_longer_than_window():
    cfg = FeatureConfig(hop_length=512, n_fft=512)
    columns = mel_columns(chirp(6.0, 22_050), cfg)
    cutter = WindowCutter(cfg, stride_columns=60)
    got = []
    for i in range(0, columns.shape[1], 7):
        got.extend(s for s, _ in cutter.push(columns[:, i : i + 7]))
    assert got == list(window_starts(columns.shape[1], cfg, 60))


def test_normalize_windows_removes_gain():
    audio = chirp(2.0, 22_050)
    quiet = frame_windows(mel_columns(audio * 0.01, CFG), CFG, 4)
    loud = frame_windows(mel_columns(audio, CFG), CFG, 4)
    np.testing.assert_allclose(
        normalize_windows(quiet, CFG), normalize_windows(loud, CFG), atol=1e-3
    )
    raw = FeatureConfig(window_norm="none")
    assert not np.allclose(normalize_windows(quiet, raw), normalize_windows(loud, raw))


def test_pad_short_makes_exactly_one_window():
    clip = chirp(0.4, 22_050)
    padded = pad_short(clip, CFG)
    assert padded.shape[0] == window_samples(CFG)
    assert n_columns(padded.shape[0], CFG) == CFG.window_columns
    np.testing.assert_array_equal(padded[: clip.shape[0]], clip)
    long = chirp(2.0, 22_050)
    assert pad_short(long, CFG) is long


def test_level_and_mono_helpers():
    full_scale_sine = np.sin(np.linspace(0, 200 * np.pi, 22_050)).astype(np.float32)
    assert abs(level_dbfs(full_scale_sine) - (-3.01)) < 0.05
    assert level_dbfs(np.zeros(100, np.float32)) == -120.0
    with pytest.raises(ValueError):
        to_mono(np.zeros((2, 2, 2)))


def test_features_of_a_real_file_match_streamed_file_blocks(real_v1):
    path = next((real_v1 / "audio" / "yt-scream-sfx").glob("*.flac"))
    audio, rate = sf.read(path, dtype="float32")
    batch = file_columns(audio, rate, CFG)
    front, out = StreamingFeatures(CFG, rate), []
    with sf.SoundFile(path) as f:
        for block in f.blocks(blocksize=3000, dtype="float32"):
            out.append(front.push(block))
    out.append(front.flush())
    streamed = np.concatenate(out, axis=1)
    assert streamed.shape == batch.shape
    assert np.max(np.abs(streamed - batch)) <= 1e-5
