"""Decode any packaged sound (ogg, wav, flac, mp3; WavPack through ``wvunpack``) to mono
22,050 Hz 16-bit PCM and FLAC."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from detection.features import MODEL_RATE, resample

# Leading/trailing stretches quieter than this below the clip's peak frame are trimmed.
TRIM_TOP_DB = 50.0
TRIM_FRAME_S = 0.01
# Anything shorter than this after trimming is not worth a clip.
MIN_CLIP_S = 0.2


class DecodeError(ValueError):
    """A member that is not decodable audio (truncated, garbage, unknown format)."""


WAVPACK_MAGIC = b"wvpk"
WVUNPACK = "wvunpack"


def unpack_wavpack(data: bytes, name: str = "<member>") -> bytes:
    """The WAV file a WavPack (``.wv``) file holds, decoded by ``wvunpack`` (Debian package
    ``wavpack``; libsndfile does not read WavPack)."""
    tool = shutil.which(WVUNPACK)
    if tool is None:
        raise DecodeError(f"{name}: WavPack needs {WVUNPACK} (Debian package wavpack)")
    result = subprocess.run(
        [tool, "-q", "-y", "-", "-o", "-"], input=data, capture_output=True, check=False
    )
    if result.returncode != 0 or result.stdout[:4] != b"RIFF":
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DecodeError(f"{name}: cannot decode WavPack: {reason[-1] if reason else 'no WAV'}")
    return result.stdout


def decode(data: bytes, name: str = "<member>") -> tuple[np.ndarray, int]:
    """Samples (float32, mono, -1..1) and rate of an encoded sound file held in ``data``."""
    if data[:4] == WAVPACK_MAGIC:
        data = unpack_wavpack(data, name)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types (LibsndfileError, RuntimeError)
        reason = re.sub(r"^Error opening <[^>]*>: ", "", str(exc))
        raise DecodeError(f"{name}: cannot decode: {reason}") from exc
    if samples.size == 0:
        raise DecodeError(f"{name}: no samples")
    mono = samples.mean(axis=1).astype(np.float32)
    if not np.all(np.isfinite(mono)):
        raise DecodeError(f"{name}: non-finite samples")
    return mono, int(rate)


def to_model_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` resampled to MODEL_RATE exactly as the live front end resamples."""
    return np.asarray(resample(samples.astype(np.float32), rate, MODEL_RATE), dtype=np.float32)


def trim_silence(samples: np.ndarray, rate: int, top_db: float = TRIM_TOP_DB) -> np.ndarray:
    """``samples`` without leading/trailing frames ``top_db`` below the loudest frame."""
    frame = max(1, int(rate * TRIM_FRAME_S))
    n = len(samples) // frame
    if n == 0:
        return samples
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return samples[:0]
    keep = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12) / peak) > -top_db)
    return samples[keep[0] * frame : min(len(samples), (keep[-1] + 1) * frame)]


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples as 16-bit PCM (clipped)."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def pcm_sha256(pcm: np.ndarray) -> str:
    """Checksum of decoded 16-bit PCM (little-endian bytes): equal for equal audio."""
    return hashlib.sha256(np.ascontiguousarray(pcm, dtype="<i2").tobytes()).hexdigest()


def prepare(data: bytes, name: str = "<member>") -> np.ndarray:
    """The clip as written: decoded, mono, MODEL_RATE, silence trimmed, 16-bit PCM."""
    samples, rate = decode(data, name)
    trimmed = trim_silence(to_model_rate(samples, rate), MODEL_RATE)
    if len(trimmed) < MIN_CLIP_S * MODEL_RATE:
        raise DecodeError(f"{name}: silent or shorter than {MIN_CLIP_S} s")
    return to_pcm16(trimmed)


def write_flac(path: str | os.PathLike, pcm: np.ndarray, rate: int = MODEL_RATE) -> None:
    """Write 16-bit FLAC atomically (a temp file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".flac", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, pcm, rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_pcm16(path: str | os.PathLike) -> np.ndarray:
    """16-bit PCM of a written FLAC (for checksums)."""
    pcm, _ = sf.read(str(path), dtype="int16", always_2d=False)
    return pcm


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temp in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
