"""Retraining's pure parts: verdicts as labels, held-back feedback, the fixed pack's split,
fine-tuning from an ensemble's weights, and the refusals when there is nothing to learn."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from detection.dataset import Recording, Segment, scan
from detection.feedback_set import ExportItem, FeedbackError, export_items, verdict_segments
from detection.retraining import (
    RetrainError,
    RetrainOptions,
    assemble,
    fixed_split,
    heldback_mask,
    read_feedback,
)
from detection.train_loop import member_state
from detection.training_plan import TrainingError


def test_a_confirmed_verdict_labels_the_incident_and_a_dismissal_the_whole_snippet():
    assert verdict_segments("1", 8.0, 2.0, 5.5) == [Segment(2.0, 5.5, "1")]
    # An incident still open when the snippet was cut: to the snippet's end.
    assert verdict_segments("1", 8.0, 2.0, None) == [Segment(2.0, 8.0, "1")]
    # Clipped to the snippet.
    assert verdict_segments("1", 8.0, -1.0, 30.0) == [Segment(0.0, 8.0, "1")]
    for label in ("0_0", "0_1", "0_2"):
        assert verdict_segments(label, 4.25, 1.0, 2.0) == [Segment(0.0, 4.25, label)]
    with pytest.raises(FeedbackError, match="not a label"):
        verdict_segments("", 4.0, 0.0, 1.0)
    with pytest.raises(FeedbackError, match="no audio"):
        verdict_segments("0_1", 0.0, 0.0, None)


def _clip(rel: str, site: str) -> Recording:
    return Recording(path=None, rel=rel, label_path=None, group=f"feedback:{site}/m")


def test_held_back_feedback_is_each_sites_newest_days():
    from detection.feedback_set import FeedbackInfo

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    days = {"a1": ("A", 0), "a2": ("A", 9), "a3": ("A", 10), "b1": ("B", 0.5), "b2": ("B", 3)}
    clips = [_clip(rel, site) for rel, (site, _) in days.items()]
    info = {
        rel: FeedbackInfo(1, site, "m", "0_2", t0 + dt.timedelta(days=d))
        for rel, (site, d) in days.items()
    }
    held = heldback_mask(clips, info, 2.0)
    # A's newest is day 10: days 9 and 10 held back; B's newest is day 3: only day 3 (not day 0.5).
    assert dict(zip(days, held.tolist(), strict=True)) == {
        "a1": False,
        "a2": True,
        "a3": True,
        "b1": False,
        "b2": True,
    }
    assert not heldback_mask(clips, info, 0).any()


def test_the_fixed_pack_holds_whole_sources_with_screams(real_v1):
    recordings = scan(real_v1).recordings
    fixed = fixed_split(recordings, 5)
    inside = {r.source for r, f in zip(recordings, fixed, strict=True) if f}
    outside = {r.source for r, f in zip(recordings, fixed, strict=True) if not f}
    assert inside and outside and not inside & outside
    assert any(r.has_scream for r, f in zip(recordings, fixed, strict=True) if f)
    assert np.array_equal(fixed, fixed_split(recordings, 5))  # the same every run


def test_each_ensemble_member_starts_from_its_own_weights():
    from detection.networks import build_network

    ensemble = build_network("A_Depthwise", n_mels=64, n_frames=44, members=3)
    state = ensemble.state_dict()
    single = build_network("A_Depthwise", n_mels=64, n_frames=44)
    part = member_state(state, 2)
    single.load_state_dict(part)
    for key, value in single.state_dict().items():
        assert np.array_equal(value.numpy(), state[f"members.2.{key}"].numpy())
    with pytest.raises(TrainingError, match="no ensemble member 3"):
        member_state(state, 3)


def _export(tmp_path, real_v1, when: dt.datetime, files: int = 3):
    paths = sorted((real_v1 / "audio" / "speech-tr").glob("*.flac"))[:files]
    items = [
        ExportItem(i + 1, "Yard", "mic", "v1", "op", "0_2", when, p, 0.0, None)
        for i, p in enumerate(paths)
    ]
    return export_items(items, tmp_path / "export")


def test_no_feedback_and_all_feedback_held_back_are_refused_clearly(tmp_path, real_v1):
    (tmp_path / "empty").mkdir()
    export_items([], tmp_path / "empty")
    with pytest.raises(RetrainError, match="no feedback to retrain on: the export .* holds no"):
        assemble([real_v1], tmp_path / "empty", real_v1, RetrainOptions())
    _export(tmp_path, real_v1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(RetrainError, match="all 3 reviewed alert\\(s\\) are within 7 days"):
        assemble([real_v1], tmp_path / "export", real_v1, RetrainOptions(holdout_days=7))


def test_assembly_keeps_the_fixed_sources_out_of_training(tmp_path, real_v1):
    _export(tmp_path, real_v1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    clips, info = read_feedback(tmp_path / "export")
    assert len(clips) == 3 and all(r.rel.startswith("feedback/") for r in clips)
    data = assemble(
        [real_v1], tmp_path / "export", real_v1, RetrainOptions(holdout_days=0, max_files=30)
    )
    assert len(data.feedback) == 3 and not data.heldback
    assert len(data.base) == 30
    assert not {r.source for r in data.base} & {r.source for r in data.fixed}
    assert any(r.has_scream for r in data.base) and any(r.has_scream for r in data.fixed)
