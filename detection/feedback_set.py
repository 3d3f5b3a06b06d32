"""The feedback data set: operators' verdicts on alerts as a pack in the seed's format.

An export folder is a pack like any other (``docs/data.md``), read by ``dataset.scan`` and so
by ``manage.py train`` and ``manage.py retrain``::

    <out>/manifest.csv                          one row per reviewed alert
    <out>/audio/<site>/<device>/alert<id>.flac  the alert's snippet (mono, 16-bit FLAC)
    <out>/audio/<site>/<device>/alert<id>.txt   Audacity label file

A confirmed alert (``1``) is labelled ``1`` over its incident (from its start to its end,
clipped to the snippet); a dismissed one carries its reason (``0_0``, ``0_1``, ``0_2``) over
the whole snippet. Every row's ``source`` is ``feedback`` and its ``group`` is
``feedback:<site>/<device>``, so grouped splits keep a device's clips together.

This module is pure (no Django): the Django side (``feedback.export``) reads the alerts and
their reviews and hands each one over as an ``ExportItem``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .dataset import MANIFEST, NEGATIVE_LABELS, SCREAM, Segment, write_labels

SOURCE = "feedback"
SUBCATEGORIES = {
    SCREAM: "confirmed_alert",
    "0_0": "dismissed_human",
    "0_1": "dismissed_high_pitched",
    "0_2": "dismissed_other",
}


class FeedbackError(ValueError):
    """A verdict or a snippet that cannot become a labelled clip."""


@dataclass(frozen=True)
class ExportItem:
    """One reviewed alert, as the export needs it."""

    alert_id: int
    site: str
    device: str
    model_version: str
    reviewer: str
    verdict: str  # the latest review's label: "1", "0_0", "0_1" or "0_2"
    verdict_time: datetime
    snippet_path: Path | None  # None: the alert has no snippet file
    incident_start_s: float  # seconds from the snippet's start
    incident_end_s: float | None  # None: the incident never ended (to the snippet's end)


COLUMNS = [
    "path",
    "label_file",
    "source",
    "group",
    "class",
    "subcategory",
    "duration_s",
    "alert_id",
    "site",
    "device",
    "model_version",
    "reviewer",
    "verdict",
    "verdict_time",
]


def slug(text: str) -> str:
    """A folder name for a site or device name (letters, digits, ``-`` and ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text.strip()).strip("-")
    return cleaned[:60] or "unnamed"


def clip_path(item: ExportItem) -> str:
    return f"audio/{slug(item.site)}/{slug(item.device)}/alert{item.alert_id}.flac"


def device_group(site: str, device: str) -> str:
    return f"{SOURCE}:{site}/{device}"


def verdict_segments(
    verdict: str, duration_s: float, incident_start_s: float, incident_end_s: float | None
) -> list[Segment]:
    """The labelled segments of one clip: ``1`` over the incident of a confirmed alert, the
    dismissal's reason over the whole clip."""
    if duration_s <= 0:
        raise FeedbackError("the snippet holds no audio")
    if verdict in NEGATIVE_LABELS:
        return [Segment(0.0, round(duration_s, 6), verdict)]
    if verdict != SCREAM:
        raise FeedbackError(f"verdict {verdict!r} is not a label (1, 0_0, 0_1, 0_2)")
    start = min(max(incident_start_s, 0.0), duration_s)
    end = duration_s if incident_end_s is None else min(max(incident_end_s, start), duration_s)
    if end - start < 0.05:  # an incident at the very end: label the snippet's last second
        start = max(0.0, end - 1.0)
    if end <= start:
        raise FeedbackError("the incident lies outside its snippet")
    return [Segment(round(start, 6), round(end, 6), SCREAM)]


def read_snippet(path: Path | None) -> tuple[np.ndarray, int]:
    """A snippet's samples and rate; ``FeedbackError`` saying why it cannot be used."""
    import soundfile

    if path is None:
        raise FeedbackError("the alert has no snippet file")
    if not path.is_file():
        raise FeedbackError(f"snippet file {path} is missing")
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise FeedbackError(f"snippet file {path} cannot be decoded: {exc}") from exc
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise FeedbackError(f"snippet file {path} holds no samples")
    if not np.all(np.isfinite(audio)):
        raise FeedbackError(f"snippet file {path} holds NaN or infinite samples")
    return audio, int(rate)


def flac_bytes(audio: np.ndarray, rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class ExportResult:
    """What an export wrote, and the alerts it could not (with the reason for each)."""

    out: Path
    rows: list[dict]
    problems: list[tuple[int, str]]  # (alert id, why)

    @property
    def exported(self) -> int:
        return len(self.rows)

    def counts(self) -> dict[str, int]:
        labels = [row["class"] for row in self.rows]
        return {label: labels.count(label) for label in sorted(set(labels))}


def export_items(items: list[ExportItem], out: str | os.PathLike) -> ExportResult:
    """Write each reviewed alert as a labelled FLAC clip and the manifest of them all.

    An alert whose snippet is missing or does not decode is reported in ``problems`` and
    left out; every other alert is written. The manifest is written last, through a
    temporary file, so a reader never sees rows without their clips. Clips already in ``out``
    from an earlier export are overwritten with the current verdict, and those of alerts no
    longer exported are removed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, problems = [], []
    for item in sorted(items, key=lambda i: i.alert_id):
        try:
            audio, rate = read_snippet(item.snippet_path)
            duration = audio.shape[0] / rate
            segments = verdict_segments(
                item.verdict, duration, item.incident_start_s, item.incident_end_s
            )
        except FeedbackError as exc:
            problems.append((item.alert_id, str(exc)))
            continue
        rel = clip_path(item)
        label_rel = rel[: -len(".flac")] + ".txt"
        _write_atomic(out / rel, flac_bytes(audio, rate))
        write_labels(out / label_rel, segments)
        rows.append(
            {
                "path": rel,
                "label_file": label_rel,
                "source": SOURCE,
                "group": device_group(item.site, item.device),
                "class": item.verdict,
                "subcategory": SUBCATEGORIES[item.verdict],
                "duration_s": f"{duration:.3f}",
                "alert_id": str(item.alert_id),
                "site": item.site,
                "device": item.device,
                "model_version": item.model_version,
                "reviewer": item.reviewer,
                "verdict": "confirmed" if item.verdict == SCREAM else "dismissed",
                "verdict_time": item.verdict_time.isoformat(),
            }
        )
    write_manifest(out / MANIFEST, rows)
    remove_stale_clips(out, {p for row in rows for p in (row["path"], row["label_file"])})
    return ExportResult(out, rows, problems)


def remove_stale_clips(out: Path, kept: set[str]) -> list[str]:
    """Delete the clips an earlier export into ``out`` wrote that this one did not (a verdict
    withdrawn since, an alert deleted), so that no reader takes them for labelled audio."""
    removed = []
    audio = out / "audio"
    if not audio.is_dir():
        return removed
    for path in sorted(audio.rglob("alert*")):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and path.suffix in (".flac", ".txt") and rel not in kept:
            path.unlink()
            removed.append(rel)
    return removed


def write_manifest(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(path, buffer.getvalue().encode("utf-8"))


@dataclass(frozen=True)
class FeedbackInfo:
    """What a feedback manifest says of one clip beyond its group and source."""

    alert_id: int
    site: str
    device: str
    verdict: str
    verdict_time: datetime
    model_version: str = ""


def read_feedback_manifest(root: str | os.PathLike) -> dict[str, FeedbackInfo]:
    """The feedback rows of every ``manifest.csv`` under ``root``, keyed by the clip's path
    relative to ``root`` (as ``dataset.scan`` names it). Rows of other packs are skipped."""
    root = Path(root)
    out: dict[str, FeedbackInfo] = {}
    for manifest in sorted(root.rglob(MANIFEST)):
        folder = manifest.parent.relative_to(root)
        with manifest.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "alert_id" not in reader.fieldnames:
                continue
            for row in reader:
                if row.get("source") != SOURCE:
                    continue
                try:
                    info = FeedbackInfo(
                        alert_id=int(row["alert_id"]),
                        site=row["site"],
                        device=row["device"],
                        verdict=row["class"],
                        verdict_time=datetime.fromisoformat(row["verdict_time"]),
                        model_version=row.get("model_version", ""),
                    )
                except (KeyError, ValueError) as exc:
                    raise FeedbackError(f"{manifest}: bad feedback row {row!r}: {exc}") from exc
                out[(folder / row["path"]).as_posix()] = info
    return out
