"""Scoring requests carry the columns a stream's windows were cut from: the worker gets back
exactly the windows that were cut, in order, in a fraction of the bytes."""

import numpy as np
import pytest

from detection.features import FeatureConfig, StreamingFeatures, WindowCutter
from live.scoring_messages import decode_windows, encode_request, uniform_step

CFG = FeatureConfig()
W = CFG.window_columns


def cut_stream(seed: int, seconds: float, stride: int, frame: int = 3_200):
    """Windows of one stream of noise at 16 kHz, as ``DeviceStream`` cuts them per frame."""
    audio = np.random.default_rng(seed).normal(0, 0.1, int(seconds * 16_000)).astype(np.float32)
    front, cutter, per_frame = StreamingFeatures(CFG, 16_000), WindowCutter(CFG, stride), []
    for start in range(0, audio.size, frame):
        cut = cutter.push(front.push(audio[start : start + frame]))
        if cut:
            per_frame.append(([c for c, _ in cut], np.stack([w for _, w in cut])))
    return per_frame


def test_uniform_step_only_for_evenly_spaced_overlapping_windows():
    assert uniform_step([8, 12, 16], W) == 4
    assert uniform_step([8], W) == 0
    assert uniform_step([8, 12, 20], W) == 0  # a gated window left a gap
    assert uniform_step([0, W], W) == 0  # no overlap: nothing to share
    assert uniform_step([12, 8], W) == 0


@pytest.mark.parametrize("stride", [1, 4, 7, W - 1])
def test_many_streams_windows_come_back_exactly_and_in_order(stride):
    streams = [cut_stream(seed, 2.5, stride) for seed in range(3)]
    parts, expected = [], []
    for frames in zip(*streams, strict=False):  # interleaved, as the batcher queues them
        for cols, windows in frames:
            parts.append((windows, uniform_step(cols, W)))
            expected.append(windows)
    expected = np.concatenate(expected)
    message = encode_request(parts, "reply!x", "r1", "key")
    decoded = decode_windows(message)
    assert decoded.dtype == np.float32 and decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)  # bit for bit


def test_a_request_is_less_than_half_the_bytes_of_whole_windows_at_the_live_stride():
    frames = cut_stream(0, 10.0, CFG.stride_columns(0.1))
    parts = [(windows, uniform_step(cols, W)) for cols, windows in frames]
    whole = sum(windows.nbytes for windows, _ in parts)
    sent = len(encode_request(parts, "reply!x", "r1", "key")["columns"])
    assert sent < 0.6 * whole


def test_unrelated_windows_travel_whole():
    windows = np.random.default_rng(1).normal(-40, 12, (5, CFG.n_mels, W)).astype(np.float32)
    message = encode_request(windows, "reply!x", "r1", "key")
    assert message["blocks"] == [[1, 0]] * 5
    np.testing.assert_array_equal(decode_windows(message), windows)


def test_evenly_spaced_windows_that_do_not_overlap_as_claimed_travel_whole():
    windows = np.random.default_rng(3).normal(-40, 12, (3, CFG.n_mels, W)).astype(np.float32)
    message = encode_request([(windows, 4)], "reply!x", "r1", "key")
    assert message["blocks"] == [[1, 0]] * 3
    np.testing.assert_array_equal(decode_windows(message), windows)


def test_an_earlier_release_s_whole_windows_are_still_read():
    windows = np.random.default_rng(2).normal(-40, 12, (3, CFG.n_mels, W)).astype(np.float32)
    legacy = {"windows": windows.tobytes(), "shape": list(windows.shape)}
    np.testing.assert_array_equal(decode_windows(legacy), windows)


@pytest.mark.parametrize(
    "change",
    [
        {"shape": [5, 1]},
        {"blocks": [[5, 0]]},  # several windows need a step
        {"blocks": [[1, 0]] * 4},  # four windows where the shape says five
        {"columns": b"\x00" * 12},
    ],
)
def test_a_malformed_request_is_refused_with_a_value_error(change):
    windows = np.zeros((5, CFG.n_mels, W), dtype=np.float32)
    message = {**encode_request(windows, "reply!x", "r1", "key"), **change}
    with pytest.raises(ValueError):
        decode_windows(message)
