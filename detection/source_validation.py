"""Out-of-source validation: whole collections held out, and figures per held-out source.

Grouped K-fold keeps slices of one recording on one side, but files of one collection (one
uploader, one microphone, one sound-effect library) still sit on both sides, and the model
learns the collection. Holding out whole sources (``Recording.source``) measures what it does
on recordings from elsewhere, which is what a deployment hears.

* ``source_folds``: every source held out once, alone (leave-one-source-out) or in K folds of
  whole sources balanced by duration;
* ``source_rows``: clip (file) and window figures of each held-out source at one threshold,
  false-positive rates of negatives by kind and by sub-category;
* ``compose_stream`` / ``stream_columns`` / ``score_stream``: a long stream of one source's
  non-scream recordings as a 16 kHz device streams it, scored window by window, for false
  alerts an hour through the live decision (``alert_figures.alert_figures``);
* ``by_source_md``: the report's tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .augment import device_round_trip
from .dataset import NEGATIVE_LABELS, Recording
from .evaluation import (
    Scored,
    average_precision,
    binary_metrics,
    file_level,
    file_top_scores,
    fpr_per_sublabel,
)
from .features import FeatureConfig, mel_columns, pad_short, window_starts
from .progress import tqdm
from .second_stage import SecondStage

STREAM_RATE = 16_000  # the reference client's rate: held-out streams are heard at it
JOIN_FADE_S = 0.01  # each recording of a stream fades in and out (no clicks at the joins)
MAX_STREAM_S = 1800.0  # a source's stream is composed and scored in parts of at most this


class SourceSplitError(ValueError):
    """Sources that cannot be split as asked."""


def source_folds(sources: list[str], seconds: list[float], k: int = 0) -> np.ndarray:
    """Fold of every recording such that no source is in two folds.

    ``k = 0``: one fold per source (leave-one-source-out), sources in sorted order. ``k >= 2``:
    whole sources into ``k`` folds balanced by duration (greedy: sources from the longest,
    each into the fold with the least audio so far; ties to the lower fold, then by name).
    Every source is held out exactly once either way.
    """
    if len(sources) != len(seconds):
        raise SourceSplitError("one duration per recording is needed")
    names = sorted(set(sources))
    if k == 0:
        if len(names) < 2:
            raise SourceSplitError(f"leave-one-source-out needs 2 or more sources, got {names}")
        fold_of = {name: i for i, name in enumerate(names)}
    else:
        if k < 2:
            raise SourceSplitError(f"need at least 2 source folds, got {k}")
        if len(names) < k:
            raise SourceSplitError(f"{len(names)} source(s) cannot fill {k} folds; use fewer")
        totals = dict.fromkeys(names, 0.0)
        for name, secs in zip(sources, seconds, strict=True):
            totals[name] += float(secs)
        load = np.zeros(k)
        fold_of = {}
        for name in sorted(names, key=lambda n: (-totals[n], n)):
            fold = int(np.argmin(load))  # first minimum: the lower fold on a tie
            fold_of[name] = fold
            load[fold] += totals[name]
    return np.array([fold_of[s] for s in sources], dtype=np.int64)


def fold_sources(sources: list[str], folds: np.ndarray) -> dict[int, list[str]]:
    """The sources each fold holds out."""
    out: dict[int, set[str]] = {}
    for name, fold in zip(sources, folds, strict=True):
        out.setdefault(int(fold), set()).add(name)
    return {fold: sorted(names) for fold, names in sorted(out.items())}


# --------------------------------------------------------------------------- figures


def _file_fpr(detected: np.ndarray, keys: list[str]) -> dict[str, dict]:
    """Share of negative files flagged, per key (kind or sub-category)."""
    out: dict[str, dict] = {}
    for key, hit in zip(keys, detected, strict=True):
        row = out.setdefault(key, {"files": 0, "false_files": 0})
        row["files"] += 1
        row["false_files"] += int(hit)
    for row in out.values():
        row["fpr"] = row["false_files"] / row["files"]
    return dict(sorted(out.items()))


def source_figures(scored: Scored, recordings: list[Recording], threshold: float) -> dict:
    """Figures of the scored files at ``threshold``: file (clip) F1, precision, recall, ROC AUC
    and average precision over each file's top window; window ROC AUC and average precision;
    false-positive rate of negative windows by sub-label and of negative files by kind and by
    sub-category. ``scored.file_names[i]`` belongs to ``recordings[i % len(recordings)]``
    (copies at device rates follow the originals, as ``cross_validate`` scores them)."""
    n = len(recordings)
    recs = [recordings[i % n] for i in range(len(scored.file_names))]
    files = file_level(scored.file_index, scored.scores, scored.file_truth, threshold)
    top = file_top_scores(scored.file_index, scored.scores, scored.file_truth.size)
    seen = np.isfinite(top)
    lab = scored.labelled
    windows = binary_metrics(scored.targets[lab] == 1, scored.scores[lab], threshold)
    negative = ~scored.file_truth & seen
    detected = top[negative] >= threshold
    negative_recs = [r for r, keep in zip(recs, negative, strict=True) if keep]
    return {
        "files": int(scored.file_truth.size),
        "scream_files": int(scored.file_truth.sum()),
        "file": {
            **{k: files[k] for k in ("f1", "precision", "recall", "tp", "fp", "fn", "tn")},
            "roc_auc": files["roc_auc"],
            "average_precision": average_precision(scored.file_truth[seen], top[seen]),
        },
        "window": {
            "f1": windows["f1"],
            "roc_auc": windows["roc_auc"],
            "average_precision": average_precision(scored.targets[lab] == 1, scored.scores[lab]),
        },
        "window_fpr_by_sublabel": fpr_per_sublabel(
            scored.sublabels[lab], scored.scores[lab], threshold
        ),
        "file_fpr_by_kind": _file_fpr(detected, [r.kind for r in negative_recs]),
        "file_fpr_by_subcategory": _file_fpr(
            detected, [r.subcategory or r.kind for r in negative_recs]
        ),
    }


def source_rows(
    scored: Scored, recordings: list[Recording], folds: np.ndarray | None, threshold: float
) -> list[dict]:
    """``source_figures`` of each held-out source (in source order), with its fold (``""``
    without folds: a model scoring data it was not trained on)."""
    n = len(recordings)
    rec_of_file = np.arange(len(scored.file_names)) % n
    sources = np.array([r.source for r in recordings])
    rows = []
    for name in sorted(set(sources.tolist())):
        files = np.flatnonzero(sources[rec_of_file] == name)
        members = [recordings[i] for i in np.flatnonzero(sources == name)]
        figures = source_figures(scored.subset(files), members, threshold)
        fold = "" if folds is None else int(folds[np.flatnonzero(sources == name)[0]])
        rows.append({"source": name, "fold": fold, **figures})
    return rows


def mean_over_sources(rows: list[dict]) -> dict:
    """Mean file F1, recall and average precision over the sources that hold screams, and
    mean file precision over those where anything was flagged."""
    with_screams = [r for r in rows if r["scream_files"]]
    flagged = [r for r in rows if r["file"]["tp"] + r["file"]["fp"]]

    def mean(values):
        values = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    return {
        "file_f1": mean(r["file"]["f1"] for r in with_screams),
        "file_recall": mean(r["file"]["recall"] for r in with_screams),
        "file_average_precision": mean(r["file"]["average_precision"] for r in with_screams),
        "file_precision": mean(r["file"]["precision"] for r in flagged),
        "sources_with_screams": len(with_screams),
    }


def source_table(
    scored: Scored,
    recordings: list[Recording],
    folds: np.ndarray | None,
    threshold: float,
    streams: dict[str, np.ndarray],
    alerts,
) -> dict:
    """Figures per held-out source, pooled, their mean, and false alerts on each source's
    stream (``alerts(Scored) -> dict``: the live decision's ``alert_figures``)."""
    rows = source_rows(scored, recordings, folds, threshold)
    return {
        "sources": rows,
        "pooled": source_figures(scored, recordings, threshold),
        "mean": mean_over_sources(rows),
        "stream_alerts": stream_alert_rows(stream_scored(streams), alerts) if streams else {},
    }


# --------------------------------------------------------------------------- held-out streams


def compose_stream(audios: list[np.ndarray], sr: int, fade_s: float = JOIN_FADE_S) -> np.ndarray:
    """One long stream of the recordings one after another, each faded in and out over
    ``fade_s`` (a raised cosine) so that no join clicks. Inputs are not modified."""
    fade = int(round(fade_s * sr))
    pieces = []
    for audio in audios:
        piece = np.array(audio, dtype=np.float32, copy=True)
        m = min(fade, piece.shape[0] // 2)
        if m:
            ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)).astype(np.float32)
            piece[:m] *= ramp
            piece[-m:] *= ramp[::-1]
        pieces.append(piece)
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def stream_columns(audio: np.ndarray, cfg: FeatureConfig, rate: int = STREAM_RATE) -> np.ndarray:
    """Feature columns of a stream as a device at ``rate`` delivers it (the serving resampler
    there and back, ``augment.device_round_trip``)."""
    heard = device_round_trip(audio, rate, cfg.sample_rate)
    return mel_columns(pad_short(heard, cfg), cfg)


def score_stream(
    columns: np.ndarray,
    cfg: FeatureConfig,
    stride_columns: int,
    predict: Callable[[np.ndarray], np.ndarray],
    batch: int = 1024,
) -> np.ndarray:
    """Probabilities of every window of ``columns`` at the stride, ``predict`` taking raw
    windows ``(N, n_mels, T)`` a batch at a time."""
    starts = window_starts(columns.shape[1], cfg, stride_columns)
    width = cfg.window_columns
    out = np.empty(starts.size, dtype=np.float32)
    for begin in range(0, starts.size, batch):
        part = starts[begin : begin + batch]
        windows = np.stack([columns[:, s : s + width] for s in part])
        out[begin : begin + part.size] = predict(windows)
    return out


def stream_scored(streams: dict[str, np.ndarray]) -> Scored:
    """Streams' window probabilities as a ``Scored`` of non-scream files (one per source),
    for ``alert_figures.alert_figures``."""
    names = list(streams)
    scores = [np.asarray(streams[n], np.float64) for n in names]
    return Scored(
        scores=np.concatenate(scores) if scores else np.zeros(0),
        targets=np.full(sum(s.size for s in scores), -1, np.int64),
        sublabels=np.full(sum(s.size for s in scores), -1, np.int64),
        file_index=np.concatenate(
            [np.full(s.size, i, np.int64) for i, s in enumerate(scores)] or [np.zeros(0, np.int64)]
        ),
        file_truth=np.zeros(len(names), dtype=bool),
        file_names=names,
    )


def stream_alert_rows(streams: Scored, alerts: Callable[[Scored], dict]) -> dict[str, dict]:
    """``alerts`` (``alert_figures`` at the chosen decision) of each source's stream."""
    names = streams.file_names
    return {name: alerts(streams.subset(np.array([i]))) for i, name in enumerate(names)}


def source_streams(
    recordings: list[Recording],
    files: np.ndarray,
    audio: Callable[[Recording], np.ndarray],
    cfg: FeatureConfig,
    stride_columns: int,
    predict: Callable[[np.ndarray], np.ndarray],
    progress: bool = True,
    second_stage: SecondStage | None = None,
) -> dict[str, np.ndarray]:
    """Window probabilities of one long stream per source of ``files``: its recordings without
    a scream one after another (``compose_stream``, ``audio(recording)`` at the model rate) as
    a 16 kHz device streams them (``stream_columns``); with a ``second_stage``, rescored from
    the stream's model-rate audio as the live path rescores from its ring."""
    out = {}
    names = sorted({recordings[int(i)].source for i in files})
    for name in tqdm(names, desc="streams", unit="source", leave=False, disable=not progress):
        parts = []
        negatives = [recordings[i] for i in negatives_of(recordings, files, name)]
        for chunk in stream_chunks(negatives, audio, cfg.sample_rate):
            stream = compose_stream(chunk, cfg.sample_rate)
            heard = device_round_trip(stream, STREAM_RATE, cfg.sample_rate)
            columns = mel_columns(pad_short(heard, cfg), cfg)
            scores = score_stream(columns, cfg, stride_columns, predict)
            if second_stage is not None:
                starts = window_starts(columns.shape[1], cfg, stride_columns)
                starts_s = np.asarray(cfg.column_start_s(starts), dtype=np.float64)
                span = cfg.window_span_s()
                scores = second_stage.rescore(scores, heard, cfg.sample_rate, starts_s, span)
            parts.append(scores)
        if parts:
            out[name] = np.concatenate(parts)
    return out


def stream_chunks(
    recordings: list[Recording],
    audio: Callable[[Recording], np.ndarray],
    sr: int,
    max_seconds: float = MAX_STREAM_S,
):
    """The recordings' audio in consecutive groups of at most ``max_seconds`` (a recording
    longer than that is a group of its own), so that a source of hours is streamed in parts
    that fit in memory; a part's windows follow the previous part's (the few windows that
    would span a join between parts are not scored)."""
    chunk, seconds = [], 0.0
    for recording in recordings:
        clip = audio(recording)
        if chunk and seconds + clip.shape[0] / sr > max_seconds:
            yield chunk
            chunk, seconds = [], 0.0
        chunk.append(clip)
        seconds += clip.shape[0] / sr
    if chunk:
        yield chunk


def negatives_of(recordings: list[Recording], files: np.ndarray, source: str) -> list[int]:
    """Indices (among ``files``) of the recordings of ``source`` without a scream."""
    return [
        int(i)
        for i in files
        if recordings[int(i)].source == source and not recordings[int(i)].has_scream
    ]


# --------------------------------------------------------------------------- report


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def by_source_md(rows: list[dict], pooled: dict, means: dict, alerts: dict | None) -> str:
    """The per-source table, the pooled row, and false-positive rates by sub-category."""
    header = [
        "held-out source",
        "fold",
        "files",
        "scream files",
        "file F1",
        "precision",
        "recall",
        "file ROC AUC",
        "file AP",
        "window ROC AUC",
        "window AP",
        "file FPR 0_0",
        "file FPR 0_1",
        "file FPR 0_2",
        "false alerts / h (16 kHz stream, h)",
    ]

    def kinds(row):
        by_kind = row["file_fpr_by_kind"]
        return [by_kind[k]["fpr"] if k in by_kind else None for k in NEGATIVE_LABELS]

    def alert_words(name):
        if not alerts or name not in alerts:
            return "n/a"
        a = alerts[name]
        rate = a["false_alerts_per_hour"]
        return f"{_fmt(rate)} ({a['false_alerts']} in {a['non_scream_hours']:.2f} h)"

    body = []
    for row in [*rows, {"source": "all (pooled)", "fold": "", **pooled}]:
        f, w = row["file"], row["window"]
        body.append(
            [
                row["source"],
                row["fold"],
                row["files"],
                row["scream_files"],
                f["f1"] if row["scream_files"] else None,
                f["precision"] if f["tp"] + f["fp"] else None,
                f["recall"] if row["scream_files"] else None,
                f["roc_auc"],
                f["average_precision"] if row["scream_files"] else None,
                w["roc_auc"],
                w["average_precision"] if row["scream_files"] else None,
                *kinds(row),
                alert_words(row["source"]),
            ]
        )
    total = None
    if alerts:
        fa = sum(a["false_alerts"] for a in alerts.values())
        hours = sum(a["non_scream_hours"] for a in alerts.values())
        total = f"{fa / hours:.3f} ({fa} in {hours:.2f} h)" if hours else "n/a"
        body[-1][-1] = total
    out = _table(header, body)
    out += (
        f"\nMean over the {means['sources_with_screams']} sources with screams: file F1 "
        f"{_fmt(means['file_f1'])}, recall {_fmt(means['file_recall'])}, average precision "
        f"{_fmt(means['file_average_precision'])}; mean file precision over sources with a "
        f"flagged file {_fmt(means['file_precision'])}.\n"
    )
    sub_rows = [
        [name, v["files"], v["false_files"], v["fpr"]]
        for name, v in pooled["file_fpr_by_subcategory"].items()
    ]
    out += "\nNegative files flagged (any window at the threshold), by sub-category, all"
    out += " sources:\n\n"
    out += _table(["sub-category", "files", "false files", "FPR"], sub_rows)
    return out


BY_SOURCE_NOTE = (
    "\nFile figures at the operating threshold (a file is flagged when any window reaches it;"
    " copies at the evaluation rates count as files of their source); AP: average precision."
    " False alerts: the live decision on one long stream per source of its non-scream"
    " recordings one after another (10 ms fades at the joins) as a 16 kHz device streams them."
    " In training (`--validation loso`) every file and stream is scored by a network trained"
    " without its source, and the threshold and decision are chosen on those scores only.\n"
)
