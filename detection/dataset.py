"""Labelled recordings in the seed's format: Audacity label files, scanning, window labels.

A data set folder holds audio files (wav, flac, ogg, mp3), each with a same-stem ``.txt``
Audacity label file, one segment a line: ``start<TAB>end<TAB>label`` with labels ``1``
(scream), ``0_0``, ``0_1``, ``0_2`` (not a scream, by kind). A ``manifest.csv`` in the root or
in any folder below it (a pack) gives each file's recording ``group`` (keyed by the audio path
relative to the manifest's folder), so grouped cross-validation never puts slices of one
recording on both sides, its ``source`` (the collection it came from: the ``source`` column,
else ``source_repo``; without either, the top-level folder under the root), so that
out-of-source validation holds whole collections out, and its ``subcategory``.
``scan_roots`` reads several data roots as one data set.

Windows get their label from the labelled segments they overlap (``window_targets``);
stretches without a label are never used, neither as scream nor as negative.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import (
    FeatureConfig,
    mel_columns,
    pad_short,
    resample,
    to_mono,
    window_starts,
)
from .resampling import RESAMPLER

SCREAM = "1"
NEGATIVE_LABELS = ("0_0", "0_1", "0_2")
LABELS = (SCREAM, *NEGATIVE_LABELS)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
MANIFEST = "manifest.csv"

# Window labelling rules (seconds / fractions).
MIN_SCREAM_OVERLAP_S = 0.3
MIN_SCREAM_SEGMENT_SHARE = 0.5
MIN_NEGATIVE_COVERAGE = 0.9

# Window targets.
POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


class LabelFormatError(ValueError):
    """A label file line that is not ``start end label``."""


class DatasetError(ValueError):
    """A data set folder that cannot be used (missing, empty, unreadable)."""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start


# --------------------------------------------------------------------------- label files


def parse_labels(text: str, source: str = "<labels>") -> list[Segment]:
    """Segments of an Audacity label text; ``source`` names the file in error messages."""
    segments = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("\\"):
            continue  # blank, or Audacity's spectral-selection line ("\t<low>\t<high>")
        fields_ = line.split("\t") if "\t" in line else line.split()
        fields_ = [f.strip() for f in fields_]
        where = f"{source}, line {number}"
        if len(fields_) != 3:
            raise LabelFormatError(
                f"{where}: expected 'start<TAB>end<TAB>label', got {len(fields_)} field(s): {raw!r}"
            )
        try:
            start, end = float(fields_[0]), float(fields_[1])
        except ValueError:
            raise LabelFormatError(f"{where}: start/end are not numbers: {raw!r}") from None
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0:
            raise LabelFormatError(f"{where}: start/end must be finite and >= 0: {raw!r}")
        if end < start:
            raise LabelFormatError(f"{where}: end {end} is before start {start}")
        label = fields_[2]
        if label not in LABELS:
            raise LabelFormatError(
                f"{where}: unknown label {label!r} (expected one of {', '.join(LABELS)})"
            )
        segments.append(Segment(start, end, label))
    return segments


def read_labels(path: str | os.PathLike) -> list[Segment]:
    """Segments of an Audacity label file; ``LabelFormatError`` names the file and line."""
    path = Path(path)
    return parse_labels(path.read_text(encoding="utf-8-sig"), source=str(path))


def format_labels(segments: list[Segment]) -> str:
    return "".join(f"{s.start:.6f}\t{s.end:.6f}\t{s.label}\n" for s in segments)


def write_labels(path: str | os.PathLike, segments: list[Segment]) -> None:
    """Write segments in Audacity's label format (6 decimals, tab-separated)."""
    for s in segments:
        if s.label not in LABELS:
            raise LabelFormatError(f"{path}: unknown label {s.label!r}")
        if s.end < s.start:
            raise LabelFormatError(f"{path}: end {s.end} is before start {s.start}")
    Path(path).write_text(format_labels(segments), encoding="utf-8")


# --------------------------------------------------------------------------- scanning


@dataclass
class Recording:
    """One labelled audio file of a data set."""

    path: Path
    rel: str  # path relative to the data set root, "/"-separated
    label_path: Path
    group: str
    segments: list[Segment] = field(default_factory=list)
    source: str = ""  # the collection it came from (``manifest_entries``)
    subcategory: str = ""  # the manifest's finer kind of sound (e.g. ``baby_cry``), if any

    @property
    def has_scream(self) -> bool:
        return any(s.label == SCREAM for s in self.segments)

    @property
    def kind(self) -> str:
        """``1`` for a file with any scream, else its most-labelled negative sub-label."""
        if self.has_scream:
            return SCREAM
        totals = {label: 0.0 for label in NEGATIVE_LABELS}
        for s in self.segments:
            totals[s.label] += s.duration
        return max(NEGATIVE_LABELS, key=lambda label: totals[label])


@dataclass
class ScanResult:
    recordings: list[Recording]
    unlabelled: list[str]  # audio files without a label file (relative paths), skipped


@dataclass(frozen=True)
class ManifestEntry:
    group: str = ""
    source: str = ""
    subcategory: str = ""


def manifest_entries(root: Path) -> dict[str, ManifestEntry]:
    """What the manifests under ``root`` say of each audio file, keyed by its path relative to
    ``root``: every ``manifest.csv`` in ``root`` or below (a pack's, its ``path`` column
    relative to its own folder). ``source`` is the ``source`` column, else ``source_repo``."""
    entries: dict[str, ManifestEntry] = {}
    for manifest in sorted(root.rglob(MANIFEST)):
        folder = manifest.parent.relative_to(root)
        with manifest.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                continue
            for row in reader:
                rel = (folder / row["path"].replace("\\", "/")).as_posix()
                entries[rel] = ManifestEntry(
                    group=row.get("group") or "",
                    source=row.get("source") or row.get("source_repo") or "",
                    subcategory=row.get("subcategory") or "",
                )
    return entries


def scan(root: str | os.PathLike, prefix: str = "") -> ScanResult:
    """Every audio file under ``root`` with a same-stem ``.txt`` label file (sorted by path).

    ``prefix`` is put before every ``rel`` (``scan_roots`` names each root so). A file's
    source without a manifest entry is its top-level folder under ``root`` (the root's own
    name for a file directly in it)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist or is not a folder")
    entries = manifest_entries(root)
    recordings, unlabelled = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        rel = path.relative_to(root).as_posix()
        label_path = path.with_suffix(".txt")
        if not label_path.is_file():
            unlabelled.append(prefix + rel)
            continue
        entry = entries.get(rel, ManifestEntry())
        top = rel.split("/")[0] if "/" in rel else root.resolve().name
        recordings.append(
            Recording(
                path=path,
                rel=prefix + rel,
                label_path=label_path,
                group=entry.group or path.stem,
                segments=read_labels(label_path),
                source=entry.source or top,
                subcategory=entry.subcategory,
            )
        )
    return ScanResult(recordings, unlabelled)


def root_names(roots: list[Path]) -> list[str]:
    """A distinct name for each data root: its folder name, ``name~2`` and on for later roots
    of the same name."""
    names = [Path(r).resolve().name or "root" for r in roots]
    return [
        f"{name}~{names[:i].count(name) + 1}" if name in names[:i] else name
        for i, name in enumerate(names)
    ]


def scan_roots(roots: list[str | os.PathLike]) -> ScanResult:
    """Several data roots read as one data set. With more than one, every ``rel`` starts with
    its root's name (``root_names``), so names stay unique across roots; groups and sources
    are kept as the manifests say (a collection found in two roots is one source)."""
    roots = [Path(r) for r in roots]
    if len(roots) == 1:
        return scan(roots[0])
    recordings, unlabelled = [], []
    for root, name in zip(roots, root_names(roots), strict=True):
        result = scan(root, prefix=f"{name}/")
        recordings += result.recordings
        unlabelled += result.unlabelled
    return ScanResult(recordings, unlabelled)


def audio_seconds(recording: Recording) -> float:
    """The length of a recording's audio from its header (its last label's end if unreadable)."""
    import soundfile

    try:
        return float(soundfile.info(str(recording.path)).duration)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return max((s.end for s in recording.segments), default=0.0)


def scan_dataset(root: str | os.PathLike, report=print) -> list[Recording]:
    """Labelled recordings under ``root``; files without labels are reported and skipped."""
    result = scan(root)
    if result.unlabelled and report is not None:
        names = ", ".join(result.unlabelled[:10])
        more = f" and {len(result.unlabelled) - 10} more" if len(result.unlabelled) > 10 else ""
        report(
            f"skipped {len(result.unlabelled)} audio file(s) without a label file: {names}{more}"
        )
    return result.recordings


# --------------------------------------------------------------------------- window labels


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: float, b1: float) -> np.ndarray:
    return np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0, None)


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def window_targets(
    starts_s: np.ndarray, span_s: float, segments: list[Segment], duration_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Label of each window ``[start, start + span)`` from labelled segments.

    Returns ``(targets, sublabels)``: targets ``POSITIVE`` / ``NEGATIVE`` / ``IGNORED`` (int8)
    and the index into ``LABELS`` of each window's label (-1 when ignored).

    * positive: overlaps scream segments by >= 0.3 s in all, or covers >= 50 % of one
      scream segment (what counts for screams shorter than 0.6 s);
    * negative: >= 90 % of the window lies in negative segments and no scream segment
      overlaps it; its sub-label is the negative label covering most of it;
    * anything else (mixed, or mostly unlabelled) is ignored.

    ``duration_s`` clips windows to the audio (a clip shorter than a window is padded to
    one; only its real part counts).
    """
    starts = np.asarray(starts_s, dtype=np.float64)
    ends = starts + span_s
    if duration_s is not None:
        ends = np.minimum(ends, max(duration_s, 0.0))
    lengths = np.maximum(ends - starts, 1e-9)
    n = starts.shape[0]
    targets = np.full(n, IGNORED, dtype=np.int8)
    sublabels = np.full(n, -1, dtype=np.int8)
    if n == 0:
        return targets, sublabels

    screams = [s for s in segments if s.label == SCREAM]
    scream_total = np.zeros(n)
    scream_best_share = np.zeros(n)
    for s in _merge([(s.start, s.end) for s in screams]):
        scream_total += _overlap(starts, ends, *s)
    for s in screams:
        ov = _overlap(starts, ends, s.start, s.end)
        if s.duration > 0:
            scream_best_share = np.maximum(scream_best_share, ov / s.duration)
    positive = (scream_total >= MIN_SCREAM_OVERLAP_S - 1e-9) | (
        scream_best_share >= MIN_SCREAM_SEGMENT_SHARE - 1e-9
    )

    negative_cover = np.zeros(n)
    per_label = np.zeros((len(NEGATIVE_LABELS), n))
    negatives = [s for s in segments if s.label != SCREAM]
    for s in _merge([(s.start, s.end) for s in negatives]):
        negative_cover += _overlap(starts, ends, *s)
    for i, label in enumerate(NEGATIVE_LABELS):
        for s in _merge([(s.start, s.end) for s in negatives if s.label == label]):
            per_label[i] += _overlap(starts, ends, *s)
    negative = (
        (negative_cover / lengths >= MIN_NEGATIVE_COVERAGE - 1e-9)
        & (scream_total <= 0.0)
        & ~positive
    )

    targets[positive] = POSITIVE
    sublabels[positive] = LABELS.index(SCREAM)
    targets[negative] = NEGATIVE
    sublabels[negative] = 1 + np.argmax(per_label[:, negative], axis=0)
    return targets, sublabels


# --------------------------------------------------------------------------- audio + cache


def load_audio(path: str | os.PathLike, rate: int) -> np.ndarray:
    """Mono float32 audio at ``rate`` (soundfile; librosa for formats it cannot read)."""
    import soundfile

    try:
        audio, file_rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        import librosa

        try:
            audio, file_rate = librosa.load(str(path), sr=None, mono=False)
        except Exception as exc:  # noqa: BLE001 - any decoder error: name the file
            raise DatasetError(f"cannot read audio {path}: {exc}") from exc
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio.T  # librosa: (channels, n) -> (n, channels)
    return resample(to_mono(audio), int(file_rate), rate)


def content_hash(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    env = os.environ.get("EYESCREAM_CACHE_DIR")
    if env:
        return Path(env)
    data = os.environ.get("EYESCREAM_DATA_DIR")
    base = Path(data) if data else Path(__file__).resolve().parent.parent / "var"
    return base / "cache" / "features"


def cache_key(file_hash: str, cfg: FeatureConfig, variant: str = "") -> str:
    """Cache name for a file's columns: content hash + feature config + augmentation tag."""
    blob = json.dumps(
        {"file": file_hash, "features": cfg.to_dict(), "variant": variant, "resampler": RESAMPLER}
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class FileFeatures:
    """A recording's feature columns and the labels of its windows."""

    recording: Recording
    columns: np.ndarray  # (n_mels, n_columns) float32
    duration_s: float  # of the real audio (before padding; after augmentation)
    time_scale: float = 1.0  # augmented length / original length (speed change)

    def segments(self) -> list[Segment]:
        """The recording's segments on this copy's time axis."""
        if self.time_scale == 1.0:
            return list(self.recording.segments)
        k = self.time_scale
        return [Segment(s.start * k, s.end * k, s.label) for s in self.recording.segments]


class FeatureStore:
    """Computes a recording's columns (optionally through an augmenter) and caches them.

    ``variant`` names an augmented copy (e.g. ``"aug-s0-c1-bg<digest>"``); the same
    ``(file content, feature config, variant)`` always gives the same cache entry, so the
    augmenter must be deterministic for a given variant.
    """

    def __init__(self, cfg: FeatureConfig, cache_dir: str | os.PathLike | None = None):
        self.cfg = cfg
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._hashes: dict[Path, str] = {}

    def file_hash(self, path: Path) -> str:
        if path not in self._hashes:
            self._hashes[path] = content_hash(path)
        return self._hashes[path]

    def audio(self, recording: Recording) -> np.ndarray:
        return load_audio(recording.path, self.cfg.sample_rate)

    def at_rate(self, recording: Recording, rate: int) -> FileFeatures:
        """Columns of ``recording`` as a device streaming at ``rate`` delivers it (cached):
        the copies ``train --eval-rates`` and ``evaluate --eval-rates`` score."""
        from .augment import device_round_trip

        return self.features(
            recording,
            variant=f"rate-{rate}",
            augment=lambda audio: device_round_trip(audio, rate, self.cfg.sample_rate),
        )

    def features(self, recording: Recording, variant: str = "", augment=None) -> FileFeatures:
        """Columns of ``recording`` (``augment(audio) -> audio`` applied first when given)."""
        key = cache_key(self.file_hash(recording.path), self.cfg, variant)
        target = self.cache_dir / key[:2] / f"{key}.npz"
        if target.is_file():
            try:
                with np.load(target) as data:
                    return FileFeatures(
                        recording,
                        data["columns"],
                        float(data["duration_s"]),
                        float(data["time_scale"]),
                    )
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry: compute again
        audio = self.audio(recording)
        scale = 1.0
        if augment is not None and audio.shape[0]:
            original = audio.shape[0]
            audio = np.asarray(augment(audio), dtype=np.float32)
            # A speed change stretches the time axis: labels are scaled the same way.
            scale = audio.shape[0] / original
        duration = audio.shape[0] / self.cfg.sample_rate
        columns = mel_columns(pad_short(audio, self.cfg), self.cfg)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp, columns=columns, duration_s=np.float64(duration), time_scale=np.float64(scale)
        )
        os.replace(tmp, target)
        return FileFeatures(recording, columns, duration, scale)


def file_windows(
    features: FileFeatures, cfg: FeatureConfig, stride_columns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window starts (columns) of one file with their targets and sub-label indices."""
    starts = window_starts(features.columns.shape[1], cfg, stride_columns)
    targets, sublabels = window_targets(
        cfg.column_start_s(starts),
        cfg.window_span_s(),
        features.segments(),
        duration_s=features.duration_s,
    )
    return starts, targets, sublabels
