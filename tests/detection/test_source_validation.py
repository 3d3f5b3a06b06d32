"""Out-of-source validation: the source splitter, sources from manifests over several roots,
per-source figures, and ``train --validation loso`` / ``evaluate --by-source`` end to end."""

import csv
import json

import numpy as np
import pytest
import soundfile
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.dataset import Recording, Segment, scan, scan_roots, write_labels
from detection.evaluation import Scored, average_precision
from detection.features import MODEL_RATE
from detection.source_validation import (
    SourceSplitError,
    compose_stream,
    fold_sources,
    source_figures,
    source_folds,
    source_rows,
    stream_chunks,
)

# --------------------------------------------------------------------------- splitter


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 7), min_size=2, max_size=60),
    st.lists(st.floats(0.1, 600.0), min_size=60, max_size=60),
    st.integers(0, 4),
)
def test_no_source_is_on_both_sides_and_each_is_held_out_once(labels, lengths, k):
    sources = [f"src{i}" for i in labels]
    names = sorted(set(sources))
    if len(names) < max(k, 2) or k == 1:
        with pytest.raises(SourceSplitError):
            source_folds(sources, lengths[: len(sources)], k)
        return
    folds = source_folds(sources, lengths[: len(sources)], k)
    assert folds.shape == (len(sources),)
    for fold in np.unique(folds):
        held = {s for s, f in zip(sources, folds, strict=True) if f == fold}
        trained = {s for s, f in zip(sources, folds, strict=True) if f != fold}
        assert not held & trained  # no source on both sides
    held_out = fold_sources(sources, folds)
    flat = [s for names_ in held_out.values() for s in names_]
    assert sorted(flat) == names  # every source held out exactly once
    assert len(held_out) == (len(names) if k == 0 else k)


def test_source_folds_balance_duration():
    # ten sources of 10..100 s into 3 folds: greedy longest-first gives near-equal folds
    sources = [f"s{i}" for i in range(10) for _ in range(3)]
    seconds = [10.0 * (i + 1) / 3 for i in range(10) for _ in range(3)]
    folds = source_folds(sources, seconds, 3)
    totals = np.bincount(folds, weights=seconds, minlength=3)
    assert totals.sum() == pytest.approx(550.0)
    assert totals.max() - totals.min() <= 100.0 / 1  # within the largest source
    assert totals.max() <= 550.0 / 3 + 100.0


def test_leave_one_source_out_gives_one_fold_per_source_in_order():
    folds = source_folds(["b", "a", "b", "c"], [1, 1, 1, 1])
    assert folds.tolist() == [1, 0, 1, 2]
    with pytest.raises(SourceSplitError):
        source_folds(["a", "a"], [1, 1])


# --------------------------------------------------------------------------- scanning


def _write(folder, name, label, seconds=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    audio = np.zeros(int(seconds * 8000), np.float32)
    soundfile.write(str(folder / f"{name}.wav"), audio, 8000)
    write_labels(folder / f"{name}.txt", [Segment(0.0, seconds, label)])


def _manifest(path, rows, columns):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_multi_root_scanning_reads_source_from_manifests(tmp_path):
    real = tmp_path / "real-v1"
    _write(real / "audio" / "cats", "cat_1", "0_1")
    _write(real / "audio" / "x", "s1", "1")
    _manifest(
        real / "manifest.csv",
        [
            {"path": "audio/cats/cat_1.wav", "source_repo": "a/b", "group": "g1",
             "subcategory": "cat_meow"},
        ],
        ["path", "source_repo", "group", "subcategory"],
    )  # fmt: skip
    packs = tmp_path / "packs"
    _write(packs / "speech" / "clips", "one", "0_2")
    _write(packs / "speech" / "clips", "two", "0_2")
    _manifest(
        packs / "speech" / "manifest.csv",
        [
            {"path": "clips/one.wav", "source": "librispeech", "source_repo": "ignored",
             "group": "spk1", "subcategory": "speech"},
        ],
        ["path", "source", "source_repo", "group", "subcategory"],
    )  # fmt: skip
    # the same file name in a third root: names stay unique
    other = tmp_path / "more" / "real-v1"
    _write(other / "audio" / "cats", "cat_1", "0_1")

    result = scan_roots([real, packs, other])
    by_rel = {r.rel: r for r in result.recordings}
    assert sorted(by_rel) == [
        "packs/speech/clips/one.wav",
        "packs/speech/clips/two.wav",
        "real-v1/audio/cats/cat_1.wav",
        "real-v1/audio/x/s1.wav",
        "real-v1~2/audio/cats/cat_1.wav",
    ]
    cat = by_rel["real-v1/audio/cats/cat_1.wav"]
    assert (cat.source, cat.group, cat.subcategory) == ("a/b", "g1", "cat_meow")
    one = by_rel["packs/speech/clips/one.wav"]
    assert (one.source, one.group, one.subcategory) == ("librispeech", "spk1", "speech")
    # no manifest entry: the top-level folder under the root, the file's stem as group
    assert by_rel["packs/speech/clips/two.wav"].source == "speech"
    assert by_rel["real-v1/audio/x/s1.wav"].source == "audio"
    assert by_rel["real-v1/audio/x/s1.wav"].group == "s1"
    # one root alone keeps its relative paths
    assert [r.rel for r in scan(real).recordings] == ["audio/cats/cat_1.wav", "audio/x/s1.wav"]


# --------------------------------------------------------------------------- figures


def test_average_precision_of_perfect_and_of_reversed_rankings():
    y = np.array([1, 1, 0, 0, 0])
    assert average_precision(y, np.array([0.9, 0.8, 0.3, 0.2, 0.1])) == pytest.approx(1.0)
    # positives ranked last: precision 1/4 then 2/5 at each recall step
    assert average_precision(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == pytest.approx(
        0.5 * (1 / 4 + 2 / 5)
    )
    assert np.isnan(average_precision(np.zeros(3), np.ones(3)))


def _rec(name, source, scream, subcategory=""):
    return Recording(
        path=None, rel=name, label_path=None, group=name,
        segments=[Segment(0, 1, "1" if scream else "0_1")], source=source,
        subcategory=subcategory,
    )  # fmt: skip


def test_source_rows_split_file_figures_by_source():
    recs = [
        _rec("a1", "A", True),
        _rec("a2", "A", False, "cat_meow"),
        _rec("b1", "B", True),
        _rec("b2", "B", False, "siren"),
        _rec("b3", "B", False, "siren"),
    ]
    top = np.array([0.9, 0.95, 0.2, 0.6, 0.1])  # one window a file
    scored = Scored(
        scores=top, targets=np.array([1, 0, 1, 0, 0]), sublabels=np.array([0, 2, 0, 2, 2]),
        file_index=np.arange(5), file_truth=np.array([1, 0, 1, 0, 0], bool),
        file_names=[r.rel for r in recs],
    )  # fmt: skip
    rows = source_rows(scored, recs, np.array([0, 0, 1, 1, 1]), threshold=0.5)
    a, b = rows
    assert (a["source"], a["fold"], a["files"], a["scream_files"]) == ("A", 0, 2, 1)
    assert (a["file"]["tp"], a["file"]["fp"]) == (1, 1)
    assert a["file_fpr_by_subcategory"]["cat_meow"]["fpr"] == 1.0
    assert (b["file"]["tp"], b["file"]["fp"], b["file"]["fn"]) == (0, 1, 1)
    assert b["file_fpr_by_subcategory"]["siren"] == {"files": 2, "false_files": 1, "fpr": 0.5}
    assert b["file_fpr_by_kind"]["0_1"]["fpr"] == 0.5
    pooled = source_figures(scored, recs, 0.5)
    assert pooled["file"]["tp"] == a["file"]["tp"] + b["file"]["tp"]


def test_compose_stream_fades_each_recording_and_keeps_inputs():
    a = np.ones(1000, np.float32)
    b = np.full(500, 2.0, np.float32)
    out = compose_stream([a, b], sr=10_000, fade_s=0.01)
    assert out.shape == (1500,)
    assert out[0] < 0.05 and out[999] < 0.05 and out[1000] < 0.1  # faded at the joins
    assert out[500] == 1.0 and out[1250] == 2.0
    assert a[0] == 1.0  # input untouched


def test_long_sources_are_streamed_in_parts_that_keep_every_recording():
    recs = [_rec(f"r{i}", "A", False) for i in range(5)]
    lengths = {"r0": 4, "r1": 4, "r2": 12, "r3": 1, "r4": 1}  # seconds at 10 Hz

    def audio(rec):
        return np.zeros(lengths[rec.rel] * 10, np.float32)

    parts = list(stream_chunks(recs, audio, sr=10, max_seconds=8))
    assert [[c.shape[0] // 10 for c in part] for part in parts] == [[4, 4], [12], [1, 1]]


# --------------------------------------------------------------------------- end to end


def _three_source_set(root):
    """Three sources, each with two scream files (a gliding tone) and two noise files."""
    rng = np.random.default_rng(0)
    t = np.arange(int(2.0 * MODEL_RATE)) / MODEL_RATE
    rows = []
    for s, source in enumerate(("alpha", "beta", "gamma")):
        folder = root / source
        folder.mkdir(parents=True)
        for i in range(2):
            f0 = 1800 + 200 * s + 100 * i
            tone = 0.3 * np.sin(2 * np.pi * (f0 + 300 * t) * t)
            soundfile.write(str(folder / f"s{i}.wav"), tone.astype(np.float32), MODEL_RATE)
            write_labels(folder / f"s{i}.txt", [Segment(0.2, 1.8, "1")])
            rows.append({"path": f"{source}/s{i}.wav", "source": source, "group": f"{source}s{i}",
                         "subcategory": "scream"})  # fmt: skip
            noise = (0.05 * rng.standard_normal(t.size)).astype(np.float32)
            soundfile.write(str(folder / f"n{i}.wav"), noise, MODEL_RATE)
            write_labels(folder / f"n{i}.txt", [Segment(0.0, 2.0, "0_2")])
            rows.append({"path": f"{source}/n{i}.wav", "source": source, "group": f"{source}n{i}",
                         "subcategory": "noise"})  # fmt: skip
    _manifest(root / "manifest.csv", rows, ["path", "source", "group", "subcategory"])


def test_train_loso_writes_the_per_source_table_and_evaluate_gives_it_again(tmp_path):
    import torch

    torch.set_num_threads(1)
    data = tmp_path / "data"
    _three_source_set(data)
    out = tmp_path / "model"
    call_command(
        "train", "--data", str(data), "--out", str(out), "--epochs", "1",
        "--validation", "loso", "--aug-copies", "0", "--cache-dir", str(tmp_path / "cache"),
        "--no-progress", "--threads", "1", "--eval-rates", "16000",
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics)[0] == "by_source"  # the out-of-source table first
    table = metrics["by_source"]
    assert [r["source"] for r in table["sources"]] == ["alpha", "beta", "gamma"]
    assert [r["fold"] for r in table["sources"]] == [0, 1, 2]
    assert all(r["files"] == 8 and r["scream_files"] == 4 for r in table["sources"])  # x2 inputs
    assert metrics["cv"]["validation"] == "loso" and metrics["cv"]["folds"] == 3
    alerts = table["stream_alerts"]
    assert sorted(alerts) == ["alpha", "beta", "gamma"]
    assert all(a["non_scream_hours"] == pytest.approx(4.0 / 3600, rel=0.2) for a in alerts.values())
    report = (out / "report.md").read_text()
    assert report.index("| held-out source |") < report.index("## Windows and files")
    assert "| gamma | 2 | 8 | 4 |" in report
    config = json.loads((out / "config.json").read_text())
    assert config["threshold_source"].startswith("out-of-source")

    # evaluate: the same table for a model on given data, from two roots
    extra = tmp_path / "extra"
    _write(extra / "delta", "quiet", "0_2", seconds=2.0)
    report_dir = tmp_path / "eval"
    call_command(
        "evaluate", "--data", str(data), "--data", str(extra), "--model", str(out),
        "--by-source", "--out", str(report_dir), "--cache-dir", str(tmp_path / "cache"),
        "--no-progress", "--threads", "1",
    )  # fmt: skip
    evaluated = json.loads((report_dir / "metrics.json").read_text())["by_source"]
    assert [r["source"] for r in evaluated["sources"]] == ["alpha", "beta", "delta", "gamma"]
    assert evaluated["sources"][2]["scream_files"] == 0
    assert "delta" in evaluated["stream_alerts"]
    assert "| held-out source |" in (report_dir / "report.md").read_text()


def test_source_folds_need_loso(tmp_path):
    data = tmp_path / "data"
    _three_source_set(data)
    with pytest.raises(CommandError, match="--validation loso"):
        call_command(
            "train", "--data", str(data), "--out", str(tmp_path / "m"), "--source-folds", "2",
        )  # fmt: skip
    with pytest.raises(CommandError, match="cannot fill"):
        call_command(
            "train", "--data", str(data), "--out", str(tmp_path / "m"), "--validation", "loso",
            "--source-folds", "4", "--no-progress", "--cache-dir", str(tmp_path / "cache"),
            "--epochs", "1", "--aug-copies", "0",
        )  # fmt: skip
