"""The feedback export: reviewed alerts become a pack that ``train`` reads, mixed with others."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from detection.dataset import (
    IGNORED,
    LABELS,
    NEGATIVE,
    POSITIVE,
    FeatureStore,
    file_windows,
    read_labels,
    scan_roots,
)
from detection.features import FeatureConfig
from eyescream_site.management.commands.train import load_recordings
from feedback.export import export_feedback

from .conftest import snippet_file

pytestmark = pytest.mark.django_db


def manifest_rows(folder):
    with open(folder / "manifest.csv", newline="") as handle:
        return {int(row["alert_id"]): row for row in csv.DictReader(handle)}


def test_every_reviewed_alert_is_a_labelled_flac_with_its_manifest_row(reviewed, tmp_path):
    out = tmp_path / "export"
    result = export_feedback(out)
    assert result.problems == []
    rows = manifest_rows(out)
    # The withdrawn verdict and the alert never reviewed are not in it.
    expected = {reviewed[k].pk for k in ("scream", "0_0", "0_1", "0_2")}
    assert set(rows) == expected
    scream = rows[reviewed["scream"].pk]
    assert scream["class"] == "1" and scream["verdict"] == "confirmed"
    assert scream["source"] == "feedback" and scream["reviewer"] == "op1"
    assert scream["site"] == "Yard" and scream["device"] == "yard-mic"
    assert scream["group"] == "feedback:Yard/yard-mic"
    assert scream["model_version"] == "850b94454ae0"
    assert datetime.fromisoformat(scream["verdict_time"]).tzinfo is not None
    # Confirmed: "1" over the incident (1.9 s to 4.9 s into the snippet).
    [segment] = read_labels(out / scream["label_file"])
    assert segment.label == "1"
    assert segment.start == pytest.approx(1.9, abs=1e-3)
    assert segment.end == pytest.approx(4.9, abs=1e-3)
    # Dismissed: the reason over the whole snippet.
    for label in ("0_0", "0_1", "0_2"):
        row = rows[reviewed[label].pk]
        assert row["class"] == label and row["verdict"] == "dismissed"
        [segment] = read_labels(out / row["label_file"])
        assert segment.label == label and segment.start == 0.0
        assert segment.end == pytest.approx(float(row["duration_s"]), abs=1e-3)
    # The FLAC holds the snippet's samples (16-bit).
    import soundfile

    for alert_id, row in rows.items():
        path = out / row["path"]
        assert path.suffix == ".flac" and soundfile.info(str(path)).format == "FLAC"
        alert = next(a for a in reviewed.values() if a.pk == alert_id)
        original, _ = soundfile.read(str(snippet_file(alert)), dtype="float32")
        exported, rate = soundfile.read(str(path), dtype="float32")
        assert rate == 16_000 and exported.shape == original.shape
        assert np.max(np.abs(exported - original)) < 1e-3


def test_train_reads_the_export_mixed_with_another_pack(reviewed, tmp_path, real_v1):
    out = tmp_path / "export"
    export_feedback(out)
    # The reader of ``manage.py train --data EXPORT --data real-v1``.
    recordings = load_recordings([str(out), str(real_v1)], None, 0, command=None)
    feedback = [r for r in recordings if r.source == "feedback"]
    assert len(feedback) == 4
    assert len(recordings) == 4 + len(scan_roots([real_v1]).recordings)
    assert {r.group for r in feedback} == {"feedback:Yard/yard-mic", "feedback:Depot/depot-mic"}
    # The windows train learns from: the confirmed incident's windows are screams, the
    # dismissed clips' windows are negatives of their reason.
    cfg = FeatureConfig()
    store = FeatureStore(cfg, cache_dir=tmp_path / "cache")
    stride = cfg.stride_columns(0.1)
    kinds = {}
    for rec in feedback:
        _, targets, subs = file_windows(store.features(rec), cfg, stride)
        kinds[rec.kind] = (targets, subs)
    targets, _ = kinds["1"]
    assert np.sum(targets == POSITIVE) >= 10 and not np.any(targets == NEGATIVE)
    assert np.any(targets == IGNORED)  # the snippet outside the incident is not used
    for label in ("0_0", "0_1", "0_2"):
        targets, subs = kinds[label]
        assert targets.size > 0 and np.all(targets == NEGATIVE)
        assert np.all(subs == LABELS.index(label))


def test_site_and_since_narrow_the_export(reviewed, tmp_path):
    depot = export_feedback(tmp_path / "depot", site="Depot")
    assert {row["site"] for row in depot.rows} == {"Depot"}
    assert depot.exported == 2
    later = export_feedback(tmp_path / "none", since=datetime(2100, 1, 1, tzinfo=UTC))
    assert later.exported == 0
    assert manifest_rows(tmp_path / "none") == {}


def test_a_changed_verdict_is_exported_as_it_stands(reviewed, people, tmp_path):
    from alerts.reviews import latest_review, revise_review

    alert = reviewed["0_1"]
    revise_review(alert.pk, people["operator"], "0_2", latest_review(alert).pk)
    rows = manifest_rows(export_feedback(tmp_path / "out").out)
    assert rows[alert.pk]["class"] == "0_2"


def test_broken_snippets_are_reported_and_the_rest_exported(reviewed, tmp_path, capsys):
    snippet_file(reviewed["0_0"]).unlink()  # missing
    snippet_file(reviewed["0_1"]).write_bytes(b"fLaC this is not a FLAC stream at all")  # corrupt
    out = tmp_path / "export"
    call_command("export_feedback", "--out", str(out))
    captured = capsys.readouterr()
    assert f"alert {reviewed['0_0'].pk} left out: snippet file" in captured.err
    assert "is missing" in captured.err
    assert f"alert {reviewed['0_1'].pk} left out: snippet file" in captured.err
    assert "cannot be decoded" in captured.err
    assert "exported 2 reviewed alert(s)" in captured.out and "2 left out" in captured.out
    rows = manifest_rows(out)
    assert set(rows) == {reviewed["scream"].pk, reviewed["0_2"].pk}
    assert len(scan_roots([out]).recordings) == 2


def test_a_bad_since_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="since: an ISO date"):
        call_command("export_feedback", "--out", str(tmp_path), "--since", "last tuesday")


def test_exporting_again_into_the_same_folder_drops_a_withdrawn_verdict(reviewed, people, tmp_path):
    from alerts.reviews import latest_review, revise_review

    out = tmp_path / "export"
    export_feedback(out)
    alert = reviewed["0_2"]
    revise_review(alert.pk, people["operator"], "", latest_review(alert).pk)  # withdrawn
    export_feedback(out)
    recordings = scan_roots([out]).recordings
    assert len(recordings) == 3
    assert not list(out.rglob(f"alert{alert.pk}.*"))
