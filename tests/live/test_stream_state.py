"""DeviceStream without Django: windows equal the batch path, ring buffer, statistics."""

import numpy as np
import pytest

from detection.features import FeatureConfig, file_columns, frame_windows, level_dbfs
from devices.protocol import Hello, ProtocolError
from live.stream_state import DeviceStream, RingBuffer


def make_hello(rate=16000, encoding="pcm_s16le", channels=1) -> Hello:
    return Hello("tok", rate, encoding, channels, "test")


def tone(rate: int, seconds: float, amplitude=0.5, freq=440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    "rate, encoding, channels",
    [(16000, "pcm_s16le", 1), (44100, "pcm_f32le", 2), (22050, "pcm_s16le", 2)],
)
def test_stream_windows_equal_batch_windows(rate, encoding, channels):
    cfg = FeatureConfig()
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 0.1, (int(rate * 3.3), channels)).astype(np.float32)
    if encoding == "pcm_s16le":
        pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2")
        audio = pcm.astype(np.float32) / 32768
    else:
        pcm = audio.astype("<f4")
    stream = DeviceStream(
        make_hello(rate, encoding, channels), cfg, stride_s=0.1, clock=lambda: 1e9
    )
    got = []
    frame = int(rate * 0.2)
    for i in range(0, len(pcm), frame):
        got += stream.feed(pcm[i : i + frame].tobytes())
    expected = frame_windows(file_columns(audio, rate, cfg), cfg, cfg.stride_columns(0.1))
    # The stream has not been flushed, so it may hold back the last few columns.
    assert len(got) >= len(expected) - 3 and len(got) <= len(expected)
    for (start, window), k in zip(got, range(len(got)), strict=True):
        assert start == k * cfg.stride_columns(0.1)
        np.testing.assert_allclose(window, expected[k], rtol=0, atol=1e-4)
    assert stream.stats.frames == -(-len(pcm) // frame)
    assert stream.stats.samples == len(pcm)
    assert stream.stats.windows == len(got)
    assert stream.stats.seconds == pytest.approx(len(pcm) / rate)


def test_level_and_clipping_statistics():
    stream = DeviceStream(make_hello(), FeatureConfig(), 0.1, clock=lambda: 1e9)
    quiet = (tone(16000, 0.5, amplitude=0.1) * 32768).astype("<i2")
    stream.feed(quiet.tobytes())
    stream.stats.close_period()
    # A sine of amplitude a has RMS a / sqrt(2): 0.1 -> -23.0 dBFS.
    assert stream.stats.level_dbfs == pytest.approx(-23.0, abs=0.1)
    assert not stream.stats.clipping
    loud = np.clip(tone(16000, 0.5, amplitude=2.0) * 32768, -32768, 32767).astype("<i2")
    stream.feed(loud.tobytes())
    stream.stats.close_period()
    assert stream.stats.clipping and stream.stats.clipped_samples > 1000


def test_bad_frame_is_counted_and_raises_with_code():
    stream = DeviceStream(make_hello(), FeatureConfig(), 0.1)
    with pytest.raises(ProtocolError) as info:
        stream.feed(b"\x01\x02\x03")
    assert info.value.code == 4030
    assert stream.stats.frames_rejected == 1 and stream.stats.frames == 0


def test_ring_buffer_cuts_by_stream_time():
    cfg = FeatureConfig()
    stream = DeviceStream(make_hello(22050, "pcm_f32le"), cfg, 0.1, ring_s=2.0, clock=lambda: 1e9)
    ramp = (np.arange(22050 * 5) % 1000 / 1000).astype("<f4")
    for i in range(0, len(ramp), 4410):
        stream.feed(ramp[i : i + 4410].tobytes())
    assert stream.stream_time_s == pytest.approx(5.0)
    start, audio = stream.ring.between(3.5, 4.0)
    assert start == pytest.approx(3.5)
    np.testing.assert_array_equal(audio, ramp[int(3.5 * 22050) : int(4.0 * 22050)])
    start, audio = stream.ring.between(1.0, 3.5)  # older than the ring holds
    assert start == pytest.approx(3.0) and len(audio) == int(0.5 * 22050)
    assert stream.window_times(4)[0] == pytest.approx(4 * 512 / 22050)


def test_ring_buffer_wraps_and_handles_big_appends():
    ring = RingBuffer(10, 1)
    ring.append(np.arange(7, dtype=np.float32))
    ring.append(np.arange(7, 12, dtype=np.float32))
    np.testing.assert_array_equal(ring.samples(0, 100), np.arange(2, 12))
    ring.append(np.arange(100, 125, dtype=np.float32))
    assert ring.start == 27 and ring.end == 37
    np.testing.assert_array_equal(ring.samples(30, 33), [118, 119, 120])


@pytest.mark.parametrize("t0, t1", [(3.5, 4.0), (2.2, 4.9), (1.0, 3.5), (4.9, 6.0), (5.0, 6.0)])
def test_ring_level_equals_the_level_of_the_cut_audio(t0, t1):
    """The level gate's no-copy level: the same as measuring ``between``'s samples, also
    across the wrap-around and where the range starts before or ends after what is held."""
    rate = 1000
    ring = RingBuffer(2 * rate + 17, rate)  # a capacity that makes ranges wrap
    rng = np.random.default_rng(3)
    ring.append(rng.normal(0, 0.2, 5 * rate).astype(np.float32))
    _, audio = ring.between(t0, t1)
    assert ring.level_dbfs(t0, t1) == pytest.approx(level_dbfs(audio), abs=1e-4)


def test_ring_level_of_nothing_held_is_the_floor():
    ring = RingBuffer(100, 100)
    assert ring.level_dbfs(0.0, 1.0) == -120.0
