"""Label files, data set scanning, window labels, feature cache."""

import numpy as np
import pytest
import soundfile

from detection.dataset import (
    IGNORED,
    LABELS,
    NEGATIVE,
    POSITIVE,
    FeatureStore,
    LabelFormatError,
    Segment,
    file_windows,
    read_labels,
    scan,
    scan_dataset,
    window_targets,
    write_labels,
)
from detection.features import FeatureConfig, file_columns, pad_short

SPAN = 1.0


def test_label_round_trip(tmp_path):
    segments = [
        Segment(0.289088, 5.014982, "0_0"),
        Segment(5.1, 6.25, "1"),
        Segment(7.0, 7.0, "0_1"),
        Segment(8.123456, 9.5, "0_2"),
    ]
    path = tmp_path / "a.txt"
    write_labels(path, segments)
    assert path.read_text().splitlines()[0] == "0.289088\t5.014982\t0_0"
    assert read_labels(path) == segments


def test_spaces_blank_and_spectral_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("1.0 2.5 1\n\n\\\t100.0\t4000.0\n3.0\t4.0\t0_2\n  \n")
    assert read_labels(path) == [Segment(1.0, 2.5, "1"), Segment(3.0, 4.0, "0_2")]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("1.0\t2.0", "field"),
        ("1.0\t2.0\t1\textra", "field"),
        ("a\t2.0\t1", "not numbers"),
        ("3.0\t2.0\t1", "before start"),
        ("1.0\t2.0\tscream", "unknown label"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"0.0\t1.0\t0_0\n\n{bad_line}\n")
    with pytest.raises(LabelFormatError) as info:
        read_labels(path)
    text = str(info.value)
    assert "bad.txt" in text and "line 3" in text and message in text


def _targets(starts, segments, duration=None):
    return window_targets(np.asarray(starts, float), SPAN, segments, duration)


def test_positive_by_overlap_or_short_segment_share():
    segs = [Segment(2.0, 4.0, "1"), Segment(10.0, 10.4, "1")]
    targets, sub = _targets([1.0, 1.3, 1.75, 9.2, 9.7, 9.95], segs)
    # 1.0-2.0 touches only; 1.3-2.3 overlaps 0.3 s; 1.75-2.75 overlaps 0.75 s
    # 9.2-10.2 covers 0.2 of a 0.4 s scream (50 %); 9.7-10.7 all; 9.95-10.95 covers 0.35
    assert list(targets) == [IGNORED, POSITIVE, POSITIVE, POSITIVE, POSITIVE, POSITIVE]
    assert list(sub[targets == POSITIVE]) == [LABELS.index("1")] * 5
    targets, _ = _targets([1.25, 9.0], segs)  # 0.25 s of a long scream; 0 of the short one
    assert list(targets) == [IGNORED, IGNORED]
    targets, _ = _targets([9.35], [Segment(10.0, 10.5, "1")])  # 0.35 s = 70 % of 0.5 s
    assert list(targets) == [POSITIVE]
    targets, _ = _targets([9.2], [Segment(10.0, 11.0, "1")])  # 0.2 s of a 1 s scream
    assert list(targets) == [IGNORED]


def test_negative_needs_90_percent_cover_and_no_scream():
    segs = [Segment(0.0, 5.0, "0_1"), Segment(5.0, 6.0, "0_0"), Segment(8.0, 9.0, "1")]
    starts = [0.0, 4.5, 5.05, 6.5, 7.05, 7.5]
    targets, sub = _targets(starts, segs)
    # 0-1 all 0_1; 4.5-5.5 covered half by 0_1, half by 0_0 (negative either way)
    # 5.05-6.05: 95 % covered (0_0); 6.5-7.5: unlabelled; 7.05-8.05 touches the scream
    # 7.5-8.5: 0.5 s of scream -> positive
    assert list(targets) == [NEGATIVE, NEGATIVE, NEGATIVE, IGNORED, IGNORED, POSITIVE]
    assert LABELS[sub[0]] == "0_1"
    assert LABELS[sub[2]] == "0_0"
    assert sub[3] == -1
    targets, sub = _targets([5.2], segs)  # 0.8 s of 0_0 then unlabelled: 80 % < 90 %
    assert list(targets) == [IGNORED]


def test_unlabelled_stretches_are_never_negatives():
    segs = [Segment(1.0, 2.0, "1")]  # a scream file: the rest unlabelled
    starts = np.arange(0.0, 6.0, 0.1)
    targets, _ = _targets(starts, segs)
    assert not np.any(targets == NEGATIVE)
    assert np.any(targets == POSITIVE)
    targets, _ = _targets(starts, [])
    assert np.all(targets == IGNORED)


def test_negative_sublabel_is_majority_label():
    segs = [Segment(0.0, 0.3, "0_0"), Segment(0.3, 1.0, "0_2")]
    targets, sub = _targets([0.0], segs)
    assert targets[0] == NEGATIVE and LABELS[sub[0]] == "0_2"


def test_short_clip_counts_only_real_audio():
    # a 0.9 s clip fully labelled negative: padded to one window, its real part is covered
    targets, sub = _targets([0.0], [Segment(0.0, 0.9, "0_1")], duration=0.9)
    assert targets[0] == NEGATIVE and LABELS[sub[0]] == "0_1"


def _write_clip(path, seconds, rate=22050, freq=880.0):
    t = np.arange(int(seconds * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    soundfile.write(str(path), audio, rate)
    return soundfile.read(str(path), dtype="float32")[0]  # as stored (16-bit)


def test_scan_groups_from_manifest_and_skips_unlabelled(tmp_path):
    (tmp_path / "sub").mkdir()
    _write_clip(tmp_path / "sub" / "a.FLAC", 1.5)
    write_labels(tmp_path / "sub" / "a.txt", [Segment(0.0, 1.5, "0_2")])
    _write_clip(tmp_path / "b.wav", 1.5)
    write_labels(tmp_path / "b.txt", [Segment(0.2, 1.2, "1")])
    _write_clip(tmp_path / "c.wav", 1.0)  # no label file
    (tmp_path / "notes.txt").write_text("not a label file of any audio")
    (tmp_path / "manifest.csv").write_text("path,group\nsub/a.FLAC,rec-7\n")
    result = scan(tmp_path)
    assert [r.rel for r in result.recordings] == ["b.wav", "sub/a.FLAC"]
    assert [r.group for r in result.recordings] == ["b", "rec-7"]
    assert result.unlabelled == ["c.wav"]
    assert [r.kind for r in result.recordings] == ["1", "0_2"]
    messages = []
    assert len(scan_dataset(tmp_path, report=messages.append)) == 2
    assert "1 audio file" in messages[0] and "c.wav" in messages[0]


def test_feature_store_matches_front_end_and_caches(tmp_path):
    cfg = FeatureConfig()
    audio = _write_clip(tmp_path / "a.wav", 2.0, rate=44100)
    write_labels(tmp_path / "a.txt", [Segment(0.0, 2.0, "0_1")])
    (recording,) = scan(tmp_path).recordings
    store = FeatureStore(cfg, cache_dir=tmp_path / "cache")
    first = store.features(recording)
    expected = file_columns(audio, 44100, cfg)
    np.testing.assert_array_equal(first.columns, expected)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    again = store.features(recording)
    np.testing.assert_array_equal(again.columns, expected)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    starts, targets, _ = file_windows(first, cfg, cfg.stride_columns(0.1))
    assert starts[1] - starts[0] == cfg.stride_columns(0.1)
    assert np.all(targets == NEGATIVE)

    # an augmented copy is a separate cache entry; a 2x slower copy stretches the labels
    slow = store.features(recording, variant="copy1", augment=lambda a: np.repeat(a, 2))
    assert slow.time_scale == pytest.approx(2.0)
    assert slow.segments()[0].end == pytest.approx(4.0)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2
    cached = store.features(recording, variant="copy1", augment=None)
    assert cached.time_scale == pytest.approx(2.0)


def test_short_clip_gives_one_window(tmp_path):
    cfg = FeatureConfig()
    audio = _write_clip(tmp_path / "s.wav", 0.9)
    write_labels(tmp_path / "s.txt", [Segment(0.0, 0.9, "0_1")])
    (recording,) = scan(tmp_path).recordings
    feats = FeatureStore(cfg, cache_dir=tmp_path / "cache").features(recording)
    np.testing.assert_array_equal(feats.columns, file_columns(pad_short(audio, cfg), 22050, cfg))
    starts, targets, _ = file_windows(feats, cfg, cfg.stride_columns(0.1))
    assert list(starts) == [0] and list(targets) == [NEGATIVE]
