"""Snippet encoding and atomic writes (pure, no Django)."""

import io

import numpy as np
import pytest
import soundfile

from alerts.snippets import (
    MAX_SNIPPET_S,
    SnippetError,
    encode_snippet,
    snippet_name,
    write_atomic,
)

RATE = 16_000


def sine(seconds, rate=RATE, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_encoded_snippet_decodes_to_the_same_audio(fmt):
    audio = sine(3.0)
    data = encode_snippet(audio, RATE, fmt)
    decoded, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    assert decoded.shape == audio.shape
    assert np.max(np.abs(decoded - audio)) < 1e-3  # 16-bit quantisation only
    assert soundfile.info(io.BytesIO(data)).format == fmt.upper()


def test_long_snippet_is_capped_keeping_the_onset():
    audio = np.concatenate([np.full(RATE, 0.5, np.float32), np.zeros(40 * RATE, np.float32)])
    whole, _ = soundfile.read(io.BytesIO(encode_snippet(audio, RATE)), dtype="float32")
    assert whole.shape[0] == audio.shape[0] <= MAX_SNIPPET_S * RATE  # 41 s: kept whole
    decoded, _ = soundfile.read(io.BytesIO(encode_snippet(audio, RATE, max_s=20)), dtype="float32")
    assert decoded.shape[0] == 20 * RATE
    assert np.allclose(decoded[: RATE - 1], 0.5, atol=1e-3)


def test_out_of_range_samples_are_clipped_not_wrapped():
    decoded, _ = soundfile.read(
        io.BytesIO(encode_snippet(np.full(1000, 3.0, np.float32), RATE)), dtype="float32"
    )
    assert decoded.min() > 0.99


@pytest.mark.parametrize(
    "audio, rate, message",
    [
        (np.zeros((100, 2), np.float32), RATE, "mono"),
        (np.zeros(0, np.float32), RATE, "empty"),
        (np.array([0.0, np.nan], np.float32), RATE, "NaN"),
        (np.zeros(100, np.float32), 44.1, "rate"),
    ],
)
def test_bad_snippets_are_refused_with_a_reason(audio, rate, message):
    with pytest.raises(SnippetError, match=message):
        encode_snippet(audio, rate)


def test_write_atomic_leaves_only_the_final_file(tmp_path):
    from datetime import UTC, datetime

    name = snippet_name(7, datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "flac")
    assert name.startswith("snippets/2025/01/02/device7-20250102T030405-")
    path = write_atomic(tmp_path, name, b"abc")
    assert path.read_bytes() == b"abc"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert snippet_name(7, datetime(2025, 1, 2, tzinfo=UTC), "flac") != snippet_name(
        7, datetime(2025, 1, 2, tzinfo=UTC), "flac"
    )
