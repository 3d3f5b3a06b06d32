"""Offline detection: score whole files in bounded memory and propose scream segments.

A file is decoded block by block, each block goes through the same ``StreamingFeatures`` front
end the live ingest uses, and windows are scored in batches, so memory stays bounded by the
block size whatever the file's length. Only one float per window is kept.

A model with a first stage (``detection.first_stage``: an ensemble whose first member settles
clear non-screams) runs the other members only on the windows it passes; settled windows score
0. A model with a second stage (``detection.second_stage``) then rescores the windows its network
flagged: their audio is read again from the file, a stretch of at most ``SECOND_STAGE_SPAN_S``
at a time, and YAMNet's score is fused with the network's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .artifacts import LoadedModel
from .features import (
    FeatureConfig,
    StreamingFeatures,
    pad_short,
    resample,
    resampler_delay_s,
    to_mono,
)
from .fusion import cascade
from .second_stage import SecondStage

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3"}
SECOND_STAGE_SPAN_S = 30.0
SECOND_STAGE_MARGIN_S = 0.05


class AudioReadError(Exception):
    """A file could not be decoded, or holds no audio."""


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    peak_score: float

    def to_dict(self) -> dict:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "peak_score": round(self.peak_score, 4),
        }


@dataclass
class Detection:
    path: str
    duration_s: float
    threshold: float
    scores: np.ndarray  # one probability per window
    starts_s: np.ndarray  # start time of each window
    segments: list[Segment] = field(default_factory=list)
    settled: int = 0  # windows the first stage settled (score 0, the other members not run)
    second_stage_windows: int = 0  # windows YAMNet scored

    @property
    def max_score(self) -> float:
        return float(self.scores.max()) if self.scores.size else 0.0

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "duration_s": round(self.duration_s, 3),
            "max_score": round(self.max_score, 4),
            "threshold": round(self.threshold, 4),
            "segments": [s.to_dict() for s in self.segments],
        }


# --------------------------------------------------------------------------- decoding


def read_blocks(path: str | Path, block_s: float = 30.0) -> tuple[int, Iterator[np.ndarray]]:
    """``(rate, iterator of mono float32 blocks)`` for WAV, FLAC, OGG or MP3 (libsndfile)."""
    import soundfile as sf

    path = Path(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioReadError(f"cannot decode audio: {exc}") from exc
    if info.frames == 0:
        raise AudioReadError("file holds no audio samples")
    rate = int(info.samplerate)

    def blocks() -> Iterator[np.ndarray]:
        try:
            with sf.SoundFile(str(path)) as f:
                for block in f.blocks(blocksize=max(1, int(block_s * rate)), dtype="float32"):
                    yield to_mono(block)
        except (RuntimeError, sf.LibsndfileError) as exc:  # corrupt data mid-file
            raise AudioReadError(f"cannot decode audio: {exc}") from exc

    return rate, blocks()


def read_span(path: str | Path, rate: int, start_s: float, end_s: float) -> np.ndarray:
    """Mono float32 audio of ``path`` (at its own ``rate``) from ``start_s`` to ``end_s``."""
    import soundfile as sf

    start = max(0, int(np.floor(start_s * rate)))
    stop = max(start + 1, int(np.ceil(end_s * rate)))
    try:
        audio, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioReadError(f"cannot decode audio: {exc}") from exc
    return to_mono(audio)


def second_stage_scores(
    path: str | Path,
    rate: int,
    scores: np.ndarray,
    starts_s: np.ndarray,
    span_s: float,
    stage: SecondStage,
    model_rate: int,
) -> np.ndarray:
    """The cascade's scores of a file's windows: YAMNet on the windows ``stage`` flags, their
    audio read from ``path`` in stretches of at most ``SECOND_STAGE_SPAN_S``. Window times are
    those of the ``model_rate`` stream, which the resampler delayed against the file."""
    delay = resampler_delay_s(rate, model_rate)
    flagged = stage.flagged(scores)
    second = np.zeros(scores.shape, dtype=np.float32)
    index = np.flatnonzero(flagged)
    while index.size:
        first = starts_s[index[0]]
        chunk = index[starts_s[index] <= first + SECOND_STAGE_SPAN_S]
        begin = max(0.0, first - SECOND_STAGE_MARGIN_S)
        end = starts_s[chunk[-1]] + span_s + SECOND_STAGE_MARGIN_S
        audio = read_span(path, rate, begin, end)
        second[chunk] = stage.scream_scores(audio, rate, starts_s[chunk], span_s, begin + delay)
        index = index[chunk.size :]
    return cascade(scores, second, flagged, stage.config.weight)


# --------------------------------------------------------------------------- segments


def segments_from_scores(
    starts_s: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    span_s: float,
    merge_gap_s: float = 0.5,
) -> list[Segment]:
    """Runs of windows scoring >= threshold, merged across gaps shorter than ``merge_gap_s``.

    A segment runs from the start of its first window to the end of its last one.
    """
    hits = np.flatnonzero(scores >= threshold)
    segments: list[Segment] = []
    for i in hits:
        start, end, score = float(starts_s[i]), float(starts_s[i]) + span_s, float(scores[i])
        if segments and start - segments[-1].end_s <= merge_gap_s:
            last = segments[-1]
            segments[-1] = Segment(last.start_s, max(last.end_s, end), max(last.peak_score, score))
        else:
            segments.append(Segment(start, end, score))
    return segments


# --------------------------------------------------------------------------- detection


class _WindowScorer:
    """Collects streamed columns and scores every whole window in batches."""

    def __init__(
        self, model: LoadedModel, stride_columns: int, batch_size: int, first_stage: bool
    ) -> None:
        self.model = model
        self.first_stage = first_stage and model.first_stage is not None
        self.settled = 0
        self.cfg: FeatureConfig = model.features
        self.stride = stride_columns
        self.batch_size = batch_size
        self.columns = np.zeros((self.cfg.n_mels, 0), dtype=np.float32)
        self.first = 0  # absolute column index of self.columns[:, 0]
        self.next_start = 0
        self.scores: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []

    def push(self, new_columns: np.ndarray) -> None:
        if new_columns.shape[1]:
            self.columns = np.concatenate([self.columns, new_columns], axis=1)
        width = self.cfg.window_columns
        end = self.first + self.columns.shape[1]
        starts = np.arange(self.next_start, end - width + 1, self.stride, dtype=np.int64)
        if starts.size:
            view = np.lib.stride_tricks.sliding_window_view(self.columns, width, axis=1)
            windows = view[:, starts - self.first, :].transpose(1, 0, 2)
            if self.first_stage:
                probs, passed = self.model.predict_gated(windows, batch_size=self.batch_size)
                self.settled += int(passed.size - np.count_nonzero(passed))
            else:
                probs = self.model.predict(windows, batch_size=self.batch_size)
            self.scores.append(probs)
            self.starts.append(starts)
            self.next_start = int(starts[-1] + self.stride)
        keep_from = min(self.next_start - self.first, self.columns.shape[1])
        if keep_from > 0:
            self.columns = self.columns[:, keep_from:]
            self.first += keep_from

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.scores:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        return np.concatenate(self.scores), np.concatenate(self.starts)


def detect_file(
    path: str | Path,
    model: LoadedModel,
    stride_s: float | None = None,
    threshold: float | None = None,
    merge_gap_s: float = 0.5,
    block_s: float = 30.0,
    batch_size: int = 512,
    first_stage: bool = True,
) -> Detection:
    """Score one file; raises ``AudioReadError`` for unreadable or empty files.

    ``first_stage=False`` runs the whole network on every window even when the model has a
    first stage (the reference the first stage is tested against)."""
    cfg = model.features
    stride_columns = cfg.stride_columns(stride_s if stride_s is not None else model.stride_s)
    threshold = model.threshold if threshold is None else threshold
    rate, blocks = read_blocks(path, block_s)
    scorer = _WindowScorer(model, stride_columns, batch_size, first_stage)
    samples = 0
    first = next(blocks, None)
    if first is None or first.size == 0:
        raise AudioReadError("file holds no audio samples")
    samples += first.shape[0]
    # A clip shorter than one window is repeated to fill one (as in training).
    if first.shape[0] < int(np.ceil(cfg.window_span_s() * rate)) + 1:
        whole = np.concatenate([first, *blocks])
        samples = whole.shape[0]
        audio = pad_short(resample(whole, rate, cfg.sample_rate), cfg)
        scorer.push(StreamingFeatures(cfg).push(audio))
    else:
        front = StreamingFeatures(cfg, rate)
        scorer.push(front.push(first))
        for block in blocks:
            samples += block.shape[0]
            scorer.push(front.push(block))
        scorer.push(front.flush())
    scores, start_columns = scorer.result()
    starts_s = np.asarray(cfg.column_start_s(start_columns), dtype=np.float64)
    second_stage_windows = 0
    if model.second_stage is not None and scores.size:
        second_stage_windows = int(np.count_nonzero(model.second_stage.flagged(scores)))
        scores = second_stage_scores(
            path, rate, scores, starts_s, cfg.window_span_s(), model.second_stage, cfg.sample_rate
        )
    return Detection(
        path=str(path),
        duration_s=samples / rate,
        threshold=threshold,
        scores=scores,
        starts_s=starts_s,
        segments=segments_from_scores(
            starts_s, scores, threshold, cfg.window_span_s(), merge_gap_s
        ),
        settled=scorer.settled,
        second_stage_windows=second_stage_windows,
    )


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given, and the audio files inside any folder given (sorted)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES))
        else:
            out.append(p)
    return out
