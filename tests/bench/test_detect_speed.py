"""The speed benchmarks' audio: which recordings, how much, and what the child reports."""

import csv

import numpy as np
import soundfile as sf

from bench.detect_speed import build_long_file, recordings, run_child
from bench.stream_cost import device_pcm


def _classes(real_v1) -> dict:
    with (real_v1 / "manifest.csv").open(newline="") as f:
        return {str(real_v1 / row["path"]): row["class"] for row in csv.DictReader(f)}


def test_audio_choices_split_the_recordings_by_class(real_v1):
    classes = _classes(real_v1)
    every, quiet, screams = (recordings(a) for a in ("mixed", "non-scream", "scream"))
    assert len(every) == len(classes) == len(quiet) + len(screams)
    assert quiet and all(classes[str(p)] != "1" for p in quiet)
    assert screams and all(classes[str(p)] == "1" for p in screams)
    assert every == sorted(every)


def test_long_file_has_the_minutes_asked_of_real_recordings(real_v1, tmp_path):
    path = tmp_path / "long.flac"
    seconds = build_long_file(path, 0.5, "scream")
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 22_050 and abs(seconds - 30.0) < 1e-3 and audio.shape[0] == 30 * 22_050
    first, _ = sf.read(recordings("scream")[0], dtype="float32")
    first = first.mean(axis=1) if first.ndim == 2 else first
    n = min(first.shape[0], audio.shape[0])
    np.testing.assert_allclose(audio[:n], first[:n], atol=1 / 32768)


def test_device_audio_is_16_khz_int16_of_the_length_asked(real_v1):
    pcm = device_pcm(0.25, "non-scream")
    assert pcm.dtype == np.dtype("<i2") and pcm.shape == (15 * 16_000,)
    assert np.abs(pcm).max() > 1000  # real sound, not silence


def test_child_reports_speed_shares_and_memory(real_v1, tmp_path):
    path = tmp_path / "long.flac"
    build_long_file(path, 0.25, "mixed")
    model = "tests/detection/ensemble"  # three networks: the first stage applies
    plain = run_child(model, path, 0.1, first_stage=False)
    gated = run_child(model, path, 0.1, first_stage=True)
    assert plain["windows"] == gated["windows"] > 100
    assert not plain["first_stage"] and plain["settled"] == 0
    assert gated["first_stage"] and 0 < gated["settled"] < gated["windows"]
    assert gated["segments"] == plain["segments"]
    for stats in (plain, gated):
        assert stats["x_real_time_cpu"] > 1 and stats["x_real_time_wall"] > 1
        assert 0 < stats["max_rss_mib"] < 4096
        assert stats["second_stage_windows"] == plain["second_stage_windows"]


def test_child_reports_the_shipped_single_network(real_v1, tmp_path):
    path = tmp_path / "long.flac"
    build_long_file(path, 0.25, "mixed")
    stats = run_child("detection/shipped/default", path, 0.1, first_stage=True)
    assert not stats["first_stage"] and stats["settled"] == 0  # one network: nothing to gate
    assert stats["windows"] > 100 and stats["x_real_time_cpu"] > 1
    assert 0 < stats["second_stage_windows"] < stats["windows"]
