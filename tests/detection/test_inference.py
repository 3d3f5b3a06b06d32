"""Offline detection: same windows as training, bounded blocks, segments, errors, the command."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from django.core.management import CommandError, call_command

from detection.artifacts import load_model, save_artifact
from detection.features import FeatureConfig, file_columns, frame_windows, pad_short, resample
from detection.inference import AudioReadError, detect_file, segments_from_scores
from detection.networks import build_network


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = FeatureConfig()
    net = build_network("A", n_mels=cfg.n_mels, n_frames=cfg.window_columns)
    path = tmp_path_factory.mktemp("model") / "tiny"
    save_artifact(
        path,
        net,
        {"architecture": "A", "features": cfg.to_dict(), "stride_s": 0.1, "threshold": 0.5},
    )
    return load_model(path)


def write_tone(path, seconds, rate=16_000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * (300 + 800 * np.sin(t)) * t)).astype(np.float32)
    x += 0.01 * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    sf.write(path, np.stack([x, x], 1) if channels == 2 else x, rate)
    return x


def test_segments_merge_runs_and_gaps():
    starts = np.arange(30) * 0.1
    scores = np.zeros(30)
    scores[[2, 3, 4]] = 0.9
    scores[[6]] = 0.7  # starts 0.2 s after the run's start: overlaps, merges
    scores[[25]] = 0.95  # starts 0.9 s after the first segment's end (1.6 s): separate
    segs = segments_from_scores(starts, scores, threshold=0.5, span_s=1.0, merge_gap_s=0.5)
    assert [(s.start_s, round(s.end_s, 6), s.peak_score) for s in segs] == [
        (0.2, 1.6, 0.9),
        (2.5, 3.5, 0.95),
    ]
    assert segments_from_scores(starts, scores, 0.99, 1.0) == []


def test_detect_scores_exactly_the_training_windows(tmp_path, tiny_model):
    """Offline detection sees the windows training sees: same features, same starts."""
    write_tone(tmp_path / "a.wav", 12.0, channels=2)
    audio, _ = sf.read(tmp_path / "a.wav", dtype="float32")  # as stored: 16-bit, stereo
    cfg = tiny_model.features
    stride = cfg.stride_columns(0.1)
    expected = tiny_model.predict(frame_windows(file_columns(audio, 16_000, cfg), cfg, stride))
    small_blocks = detect_file(tmp_path / "a.wav", tiny_model, stride_s=0.1, block_s=0.37)
    big_blocks = detect_file(tmp_path / "a.wav", tiny_model, stride_s=0.1, block_s=60)
    np.testing.assert_allclose(small_blocks.scores, expected, atol=1e-5)
    np.testing.assert_allclose(big_blocks.scores, expected, atol=1e-5)
    np.testing.assert_allclose(small_blocks.starts_s[:3], [0.0, 4 * 512 / 22050, 8 * 512 / 22050])
    assert abs(small_blocks.duration_s - 12.0) < 1e-6


def test_short_clip_is_padded_to_one_window(tmp_path, tiny_model):
    write_tone(tmp_path / "short.wav", 0.6, rate=22_050)
    audio, _ = sf.read(tmp_path / "short.wav", dtype="float32")
    found = detect_file(tmp_path / "short.wav", tiny_model)
    cfg = tiny_model.features
    expected = tiny_model.predict(
        frame_windows(file_columns(pad_short(resample(audio, 22_050), cfg), 22_050, cfg), cfg, 4)
    )
    assert found.scores.shape == (1,)
    np.testing.assert_allclose(found.scores, expected, atol=1e-5)


def test_unreadable_and_empty_files_raise(tmp_path, tiny_model):
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00 not audio at all")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    for name in ("junk.wav", "empty.wav"):
        with pytest.raises(AudioReadError):
            detect_file(tmp_path / name, tiny_model)


def test_detect_command_json_labels_and_exit_status(tmp_path, tiny_model, capsys):
    write_tone(tmp_path / "one.wav", 4.0)
    write_tone(tmp_path / "two.flac", 3.0, rate=44_100)
    (tmp_path / "bad.wav").write_bytes(b"garbage")
    labels = tmp_path / "labels"
    with pytest.raises(CommandError, match="1 of 3"):
        call_command(
            "detect",
            str(tmp_path / "one.wav"),
            str(tmp_path / "bad.wav"),
            str(tmp_path / "two.flac"),
            "--json",
            "--model",
            str(tiny_model.path),
            "--threshold",
            "0.0001",
            "--labels",
            str(labels),
        )
    out = json.loads(capsys.readouterr().out)
    assert [o["path"].rsplit("/", 1)[-1] for o in out] == ["one.wav", "bad.wav", "two.flac"]
    assert set(out[1]) == {"path", "error"}
    for item in (out[0], out[2]):
        assert set(item) == {"path", "duration_s", "max_score", "threshold", "segments"}
        assert item["threshold"] == 0.0001
        assert len(item["segments"]) == 1  # every window is over a near-zero threshold
        seg = item["segments"][0]
        assert seg["start_s"] == 0.0 and seg["end_s"] <= item["duration_s"] + 1e-3
    assert abs(out[0]["duration_s"] - 4.0) < 1e-3
    assert (labels / "one.txt").read_text().strip().endswith("\t1")
    assert (labels / "two.txt").is_file() and not (labels / "bad.txt").exists()


def test_artifact_folder_is_readable_by_other_users(tiny_model):
    mode = tiny_model.path.stat().st_mode & 0o777
    assert mode & 0o055 == 0o055, oct(mode)  # group and others may list and read it
