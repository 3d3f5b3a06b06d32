"""The one feature implementation: log-mel columns for training, offline detection and live streams.

Everything here is pure NumPy (plus librosa for the mel filter bank), importable without
Django or torch. Resampling is `detection.resampling`'s polyphase filter.

Framing is "valid" (no centre padding): column ``k`` covers samples
``[k * hop, k * hop + n_fft)`` of the model-rate signal. That makes the streaming front end
exact: a column depends only on samples that have already arrived, so
``StreamingFeatures`` yields bit-for-bit the columns ``mel_columns`` yields for the whole signal.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import cache, lru_cache

import numpy as np
import scipy.fft

from .resampling import PolyphaseResampler

MODEL_RATE = 22_050


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter that decides what the network sees. Stored in each model artifact."""

    sample_rate: int = MODEL_RATE
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 11_025.0
    log: bool = True
    # Per-window normalisation applied by ``normalize_windows``: "none" or "mean"
    # (subtract the window's mean log-mel: invariant to microphone gain).
    window_norm: str = "mean"
    window_s: float = 1.0

    @property
    def window_columns(self) -> int:
        """Columns in one model window (1 s -> 43 at hop 512, 11 at hop 2048)."""
        return max(1, round(self.window_s * self.sample_rate / self.hop_length))

    @property
    def column_s(self) -> float:
        return self.hop_length / self.sample_rate

    def stride_columns(self, stride_s: float) -> int:
        """The window stride in columns (0.1 s -> 4 columns at hop 512)."""
        return max(1, round(stride_s * self.sample_rate / self.hop_length))

    def column_start_s(self, column: int | np.ndarray) -> float | np.ndarray:
        return column * self.hop_length / self.sample_rate

    def window_span_s(self) -> float:
        """Seconds of audio one window covers, first sample to last."""
        return ((self.window_columns - 1) * self.hop_length + self.n_fft) / self.sample_rate

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature parameters: {sorted(unknown)}")
        return cls(**data)


# --------------------------------------------------------------------------- signal helpers


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Down-mix ``(n,)`` or ``(n, channels)`` audio to float32 mono ``(n,)``."""
    audio = np.asarray(audio)
    if audio.ndim == 2:
        audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    elif audio.ndim != 1:
        raise ValueError(f"audio must be (n,) or (n, channels), got shape {audio.shape}")
    return np.ascontiguousarray(audio, dtype=np.float32)


def make_resampler(rate_in: int, rate_out: int = MODEL_RATE) -> PolyphaseResampler:
    """The one resampler (mono, float32 out) every path uses: training, `detect`, live."""
    return PolyphaseResampler(rate_in, rate_out)


@cache
def resampler_delay_s(rate_in: int, rate_out: int = MODEL_RATE) -> float:
    """How late ``resample`` (and the streaming front end) puts the input in its output (one
    resampler built per rate pair to read it: the second stage asks for every flagged window)."""
    return 0.0 if rate_in == rate_out else make_resampler(rate_in, rate_out).delay_s


def resample(audio: np.ndarray, rate_in: int, rate_out: int = MODEL_RATE) -> np.ndarray:
    """Resample mono audio exactly as the streaming front end does (bit for bit)."""
    audio = to_mono(audio)
    if rate_in == rate_out:
        return audio
    return make_resampler(rate_in, rate_out).resample_chunk(audio, last=True)


def power_dbfs(sum_of_squares: float, count: int) -> float:
    """RMS level in dBFS of ``count`` samples whose squares sum to ``sum_of_squares``
    (full scale = 1.0; floors at -120 dB, also for no samples)."""
    if count <= 0:
        return -120.0
    rms = math.sqrt(sum_of_squares / count)
    return max(-120.0, 20.0 * math.log10(rms + 1e-12))


def level_dbfs(audio: np.ndarray) -> float:
    """RMS level in dBFS (full scale = 1.0); -inf-safe (floors at -120 dB)."""
    flat = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    # One BLAS dot product: no temporary array (the live level gate runs this per window).
    return power_dbfs(float(np.dot(flat, flat)), flat.size)


# --------------------------------------------------------------------------- batch features


@lru_cache(maxsize=16)
def _mel_sparse(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float):
    """The mel filter bank (librosa's, float64) as a sparse matrix: each frequency bin feeds
    at most two bands (3 % of the dense matrix is non-zero).

    Besides being about 4x cheaper than the dense product for a stream's few columns, a sparse
    product sums each band over its bins in one fixed order whatever the number of columns:
    a column's value never depends on how many columns were computed with it (batch == stream).
    """
    import librosa
    import scipy.sparse

    basis = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64
    )
    return scipy.sparse.csr_array(basis)


def prepare(cfg: FeatureConfig) -> None:
    """Build the cached filter bank and window now (importing librosa takes a second or two),
    so the first audio a loaded model scores pays nothing extra."""
    _mel_sparse(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    _window(cfg.n_fft)


@lru_cache(maxsize=16)
def _window(n_fft: int) -> np.ndarray:
    w = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    w.setflags(write=False)
    return w


def n_columns(n_samples: int, cfg: FeatureConfig) -> int:
    """How many whole columns ``n_samples`` model-rate samples give."""
    if n_samples < cfg.n_fft:
        return 0
    return 1 + (n_samples - cfg.n_fft) // cfg.hop_length


def mel_columns(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Mel (or log-mel, dB) columns of mono model-rate audio: float32 ``(n_mels, n_columns)``."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    count = n_columns(audio.shape[0], cfg)
    if count == 0:
        return np.zeros((cfg.n_mels, 0), dtype=np.float32)
    # Frame k is samples [k * hop, k * hop + n_fft): a strided view, no copy.
    step = audio.itemsize
    # (np.ndarray over the buffer: numpy's as_strided costs 10x more per call.)
    frames = np.ndarray(
        (count, cfg.n_fft), np.float32, audio, strides=(cfg.hop_length * step, step)
    )
    spectrum = scipy.fft.rfft(frames * _window(cfg.n_fft), axis=1, workers=1)
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    # The projection (sparse: one fixed summation order per band) and the log in float64, one
    # rounding to float32 at the end: a column's value never depends on how many columns were
    # computed with it (batch == stream).
    basis = _mel_sparse(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    # (In C order: the sparse product would otherwise copy the transposed array once more.)
    mel = basis @ power.T.astype(np.float64, order="C")
    if cfg.log:
        mel = np.log10(np.maximum(mel, 1e-10), out=mel)
        mel *= 10.0
    return mel.astype(np.float32)


def window_samples(cfg: FeatureConfig) -> int:
    """Model-rate samples needed for exactly one window."""
    return (cfg.window_columns - 1) * cfg.hop_length + cfg.n_fft


def pad_short(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Repeat a clip shorter than one window until it fills one (longer audio is unchanged).

    Short clips (a 1.0 s sound effect is 0.02 s short of a window) would otherwise give no
    window at all; training and offline detection both pad this way.
    """
    need = window_samples(cfg)
    if audio.shape[0] >= need or audio.shape[0] == 0:
        return audio
    return np.pad(audio, (0, need - audio.shape[0]), mode="wrap")


def file_columns(audio: np.ndarray, rate: int, cfg: FeatureConfig) -> np.ndarray:
    """Columns of audio at any rate and channel count (down-mixed, resampled first)."""
    return mel_columns(resample(to_mono(audio), rate, cfg.sample_rate), cfg)


# --------------------------------------------------------------------------- windows


def window_starts(total_columns: int, cfg: FeatureConfig, stride_columns: int) -> np.ndarray:
    """First column of every whole window in ``total_columns`` columns."""
    last = total_columns - cfg.window_columns
    if last < 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, last + 1, stride_columns, dtype=np.int64)


def frame_windows(columns: np.ndarray, cfg: FeatureConfig, stride_columns: int) -> np.ndarray:
    """All whole windows of a column matrix: ``(N, n_mels, window_columns)`` (a view)."""
    if columns.shape[1] < cfg.window_columns:
        return np.zeros((0, columns.shape[0], cfg.window_columns), dtype=columns.dtype)
    view = np.lib.stride_tricks.sliding_window_view(columns, cfg.window_columns, axis=1)
    # view: (n_mels, n_windows, window_columns) -> (n_windows, n_mels, window_columns)
    return view[:, ::stride_columns, :].transpose(1, 0, 2)


def normalize_windows(windows: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """What the network sees: windows ``(N, n_mels, T)`` normalised per ``cfg.window_norm``.

    Used by training and by every scoring path, so the two cannot drift apart.
    """
    windows = np.asarray(windows, dtype=np.float32)
    if cfg.window_norm == "none":
        return np.ascontiguousarray(windows)
    if cfg.window_norm == "mean":
        return windows - windows.mean(axis=(-2, -1), keepdims=True)
    raise ValueError(f"unknown window_norm {cfg.window_norm!r}")


# --------------------------------------------------------------------------- streaming


class StreamingFeatures:
    """Incremental front end: push audio chunks of any size, get only the new columns.

    ``push`` down-mixes and resamples (`make_resampler`) to the model rate, then computes exactly
    the columns whose samples are complete. Concatenating every ``push`` result plus
    ``flush()`` equals ``file_columns`` of the whole signal.
    """

    def __init__(self, cfg: FeatureConfig, input_rate: int | None = None) -> None:
        self.cfg = cfg
        self.input_rate = input_rate or cfg.sample_rate
        self._resampler = None
        if self.input_rate != cfg.sample_rate:
            self._resampler = make_resampler(self.input_rate, cfg.sample_rate)
        self._pending = np.zeros(0, dtype=np.float32)
        self.samples_in = 0  # input-rate samples received
        self.columns_out = 0  # columns emitted so far

    def _resample(self, audio: np.ndarray, last: bool) -> np.ndarray:
        if self._resampler is None:
            return audio
        return self._resampler.resample_chunk(audio, last=last)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        mono = to_mono(chunk)
        self.samples_in += mono.shape[0]
        return self._consume(self._resample(mono, last=False))

    def flush(self) -> np.ndarray:
        """End of stream: drain the resampler and return any last whole columns."""
        if self._resampler is None:
            return np.zeros((self.cfg.n_mels, 0), dtype=np.float32)
        return self._consume(self._resample(np.zeros(0, dtype=np.float32), last=True))

    def _consume(self, audio: np.ndarray) -> np.ndarray:
        buffer = np.concatenate([self._pending, audio]) if self._pending.size else audio
        count = n_columns(buffer.shape[0], self.cfg)
        if count == 0:
            self._pending = np.array(buffer, dtype=np.float32)
            return np.zeros((self.cfg.n_mels, 0), dtype=np.float32)
        used = (count - 1) * self.cfg.hop_length + self.cfg.n_fft
        columns = mel_columns(buffer[:used], self.cfg)
        self._pending = np.array(buffer[count * self.cfg.hop_length :], dtype=np.float32)
        self.columns_out += count
        return columns


class WindowCutter:
    """Keeps the newest columns of a stream and cuts a window every ``stride_columns``.

    Windows start at columns 0, stride, 2*stride, ... exactly as ``window_starts`` gives for
    the whole signal, so live and offline scoring see the same windows.
    """

    def __init__(self, cfg: FeatureConfig, stride_columns: int) -> None:
        self.cfg = cfg
        self.stride = stride_columns
        self._columns = np.zeros((cfg.n_mels, 0), dtype=np.float32)
        self._first = 0  # absolute index of self._columns[:, 0]
        self._next_start = 0  # absolute first column of the next window to cut

    def push(self, columns: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add columns; return ``[(start_column, window (n_mels, W)), ...]`` now complete."""
        if columns.shape[1]:
            self._columns = np.concatenate([self._columns, columns], axis=1)
        end = self._first + self._columns.shape[1]
        width = self.cfg.window_columns
        out = []
        while self._next_start + width <= end:
            offset = self._next_start - self._first
            out.append((self._next_start, self._columns[:, offset : offset + width].copy()))
            self._next_start += self.stride
        drop = min(self._next_start - self._first, self._columns.shape[1])
        if drop > 0:
            self._columns = self._columns[:, drop:]
            self._first += drop
        return out
