"""The benchmarks' compositions: where each recording sits, so false alerts can be traced."""

import numpy as np
import pytest

from bench.false_alerts import what_was_playing
from bench.live_streams import (
    RATE,
    Variant,
    evidence_after_s,
    latency_timeline,
    make_variants,
)


def test_pieces_tile_the_composition_and_name_what_plays(real_v1):
    variants = make_variants(3, 12.0, seed=4)
    for variant in variants:
        starts = [start for start, _ in variant.pieces]
        assert starts[0] == 0.0 and starts == sorted(starts) and starts[-1] < variant.seconds
        # The scream is one of the pieces, where the composition says it starts.
        scream = [row for start, row in variant.pieces if start == variant.scream_at]
        assert len(scream) == 1 and scream[0]["class"] == "1"
        assert scream[0]["path"] == variant.name
        # Every other piece is a non-scream recording of the pack.
        others = [row for start, row in variant.pieces if start != variant.scream_at]
        assert others and all(row["class"] != "1" for row in others)
        row, to_join = variant.piece_at(variant.scream_at + 0.25)
        assert row["path"] == variant.name and to_join == 0.25
        row, to_join = variant.piece_at(variant.seconds - 1e-3)
        assert row is variant.pieces[-1][1]
        assert len(variant.pcm) == int(12.0 * RATE)

    # False alerts in the recording after the scream: 0.5 s after its join with the scream,
    # and 1.5 s after it (more than 1 s from any join when the recording lasts to the end).
    variant = next(v for v in variants if v.pieces[-1][1]["class"] != "1")
    index = max(i for i, (_, r) in enumerate(variant.pieces) if r["class"] == "1") + 1
    start, row = variant.pieces[index]
    end = variant.pieces[index + 1][0] if index + 1 < len(variant.pieces) else variant.seconds
    times = [start + 0.5, start + 1.5]
    assert times[-1] < end
    summary = what_was_playing([(variant, t) for t in times])
    assert summary["by_kind"] == {row["subcategory"]: 2}
    assert summary["most_frequent_files"] == {row["path"]: 2}
    far = end - times[-1] > 1.0
    assert summary["within_1_s_of_a_join"] == (1 if far else 2)
    # The start of the stream is no join.
    first_end = variant.pieces[1][0]
    assert variant.piece_at(0.0)[1] == first_end


def test_openings_are_the_screams_false_or_in_unlabelled_scream_audio(real_v1):
    from detection.decision import DecisionConfig
    from detection.features import FeatureConfig

    cfg = FeatureConfig()
    after = evidence_after_s(DecisionConfig(smoothing_windows=3, min_duration_s=0.3), cfg, 0.1)
    # 0.3 s of duration, two more windows of smoothing (4 columns each), and the audio a
    # 43-column window hears: 42 hops and one FFT frame
    assert after == pytest.approx(0.3 + 2 * 4 * 512 / 22050 + (42 * 512 + 1024) / 22050)
    for variant in make_variants(6, 20.0, seed=1):
        variant.after_s = after
        start, end = variant.spans[0]
        assert variant.kind_at(start + 0.1) == "scream"
        assert variant.kind_at(end + after - 0.01) == "scream"
        recording_end = variant.scream_at + variant.scream_length_s
        if recording_end + after + 0.5 < variant.seconds:
            assert variant.kind_at(recording_end + after + 0.5) == "false"
        if variant.scream_at > 2.0:
            assert variant.kind_at(variant.scream_at - 2.0) == "false"
        last_label_end = max(e for _, e in variant.spans)
        if recording_end - last_label_end > after + 0.1:  # a stretch of the recording unlabelled
            assert variant.kind_at(recording_end - 0.05) == "unlabelled"
        assert variant.non_scream_seconds() == pytest.approx(
            variant.seconds - variant.scream_length_s
        )


def test_a_scream_recording_labelled_only_in_part():
    # Like screamdet-main/maleScream-002: 3.6 s long, labelled a scream for its first 0.8 s.
    variant = Variant(
        np.zeros(10 * RATE, dtype="<i2"), 3.0, [(0.0, 0.8)], "s.flac", [], scream_length_s=3.6
    )
    variant.after_s = 1.5
    assert variant.kind_at(3.4) == "scream"
    assert variant.kind_at(3.0 + 0.8 + 1.5) == "scream"  # the smoothed evidence still hears it
    assert variant.kind_at(3.0 + 3.5) == "unlabelled"
    assert variant.kind_at(3.0 + 3.6 + 1.4) == "unlabelled"
    assert variant.kind_at(9.5) == "false" and variant.kind_at(1.0) == "false"
    assert variant.non_scream_seconds() == pytest.approx(10 - 3.6)
    assert variant.scream_seconds() == pytest.approx(0.8)


def test_latency_timeline_bins_openings_by_send_time():
    """The live benchmark's latency per 2 s of openings: counts, median and worst per bin."""
    openings = [(100.0, 0.05), (100.5, 0.15), (101.9, 0.10), (104.1, 1.2), (105.0, 0.8)]
    assert latency_timeline(openings) == [[0.0, 3, 100.0, 150.0], [4.0, 2, 1000.0, 1200.0]]
    assert latency_timeline(openings, bin_s=10.0) == [[0.0, 5, 150.0, 1200.0]]
    assert latency_timeline([]) == []


def test_backgrounds_from_a_held_out_pack(real_v1, tmp_path):
    """``--backgrounds``: the non-scream audio comes from another collection's manifest."""
    import csv

    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = []
    for i, (cls, seconds) in enumerate([("0_2", 3.0), ("0_1", 2.0), ("1", 3.0), ("0_2", 0.2)]):
        path = tmp_path / "audio" / f"clip{i}.flac"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, rng.normal(0, 0.1, int(seconds * 16_000)).astype("float32"), 16_000)
        rows.append(
            {"path": f"audio/clip{i}.flac", "class": cls, "subcategory": "x", "duration_s": seconds}
        )
    with open(tmp_path / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    from bench.live_streams import held_out_backgrounds

    pool = held_out_backgrounds(tmp_path)
    assert sorted(r["path"] for r in pool) == [
        str(tmp_path / "audio/clip0.flac"),
        str(tmp_path / "audio/clip1.flac"),
    ]  # not the scream, not the clip shorter than 0.5 s
    variants = make_variants(2, 10.0, seed=1, backgrounds=pool)
    for variant in variants:
        others = {row["path"] for start, row in variant.pieces if start != variant.scream_at}
        assert others and others <= {r["path"] for r in pool}
