"""Alert audio snippets: encode float audio to FLAC/WAV and write files atomically.

``encode_snippet`` is pure (NumPy + soundfile); ``write_atomic`` puts bytes under the media
folder through a temporary sibling and ``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile

# The default upper bound (``EYESCREAM_SNIPPET_MAX_S``): pre-roll ~2 s + the whole incident +
# post-roll ~1 s, at most this long; longer audio keeps its start (the onset).
MAX_SNIPPET_S = 120.0
FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}


class SnippetError(ValueError):
    """The snippet audio cannot be stored (wrong shape, rate or values)."""


def clean_audio(audio: np.ndarray, rate: int, max_s: float = MAX_SNIPPET_S) -> np.ndarray:
    """Mono float32 in [-1, 1], at most ``max_s`` seconds (the start is kept: the onset)."""
    if not isinstance(rate, int | np.integer) or not 1_000 <= int(rate) <= 192_000:
        raise SnippetError(f"snippet rate must be an integer 1000..192000 Hz, got {rate!r}")
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise SnippetError(f"snippet must be mono (n,), got shape {audio.shape}")
    if audio.size == 0:
        raise SnippetError("snippet is empty")
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise SnippetError("snippet holds NaN or infinite samples")
    limit = int(round(max_s * int(rate)))
    return np.clip(audio[:limit], -1.0, 1.0)


def encode_snippet(
    audio: np.ndarray, rate: int, fmt: str = "flac", max_s: float = MAX_SNIPPET_S
) -> bytes:
    """Encode mono float audio as 16-bit FLAC or WAV bytes (at most ``max_s`` seconds)."""
    if fmt not in FORMATS:
        raise SnippetError(f"unknown snippet format {fmt!r}; use one of {sorted(FORMATS)}")
    container, subtype = FORMATS[fmt]
    buffer = io.BytesIO()
    soundfile.write(
        buffer, clean_audio(audio, rate, max_s), int(rate), format=container, subtype=subtype
    )
    return buffer.getvalue()


def snippet_name(device_id: int, started_at: datetime, fmt: str) -> str:
    """Media-relative path of a new snippet file; unique, so a rewrite never overwrites."""
    stamp = started_at.strftime("%Y%m%dT%H%M%S")
    return f"snippets/{started_at:%Y/%m/%d}/device{device_id}-{stamp}-{uuid.uuid4().hex[:10]}.{fmt}"


def write_atomic(root: str | os.PathLike, name: str, data: bytes) -> Path:
    """Write ``data`` to ``root/name`` via a temporary sibling file, fsync and rename."""
    path = Path(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_quietly(root: str | os.PathLike, name: str) -> None:
    """Delete a media file if it exists (cleanup after a rollback or a replacement)."""
    if name:
        (Path(root) / name).unlink(missing_ok=True)
