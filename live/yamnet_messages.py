"""The second stage's messages between ingest processes and the scoring workers (scaled mode).

Request, sent to ``detection-score`` beside the network's ``score.windows``:
``{"type": "score.patches", "reply_channel", "request_id", "jobs": [job, ...]}``, each job one
stream's flagged windows: ``{"rate", "offset", "span", "starts" (float64 bytes: the windows'
starts, stream seconds), "audio" (float32 bytes: the stream's model-rate audio from its ring,
first sample at ``offset`` seconds)}``. The audio is sent as the ring holds it, so the worker
cuts exactly the patches the ingest process would have cut (``window_patches``), and the fused
score does not depend on which process heard the window. Answer, on the request's
``reply_channel``: ``{"type": "score.patches.result", "request_id", "scores"}`` (float32 bytes,
the jobs' windows in order) or the same with ``"error"`` instead of ``"scores"``.
"""

from __future__ import annotations

import math

import numpy as np

from detection.yamnet import YAMNet

from .yamnet_batches import PatchJob

PATCHES_TYPE = "score.patches"
MAX_WINDOWS = 4096  # in one request
MAX_AUDIO_S = 60.0  # of one job (a ring holds seconds)
RATES = range(8_000, 192_001)


def encode_patches_request(jobs: list[PatchJob], reply_channel: str, request_id: str) -> dict:
    return {
        "type": PATCHES_TYPE,
        "reply_channel": reply_channel,
        "request_id": request_id,
        "jobs": [
            {
                "rate": int(job.rate),
                "offset": float(job.offset_s),
                "span": float(job.span_s),
                "starts": np.asarray(job.starts_s, dtype=np.float64).tobytes(),
                "audio": np.asarray(job.audio, dtype=np.float32).tobytes(),
            }
            for job in jobs
        ],
    }


def decode_patch_jobs(message: dict, model: YAMNet) -> list[PatchJob]:
    """The request's jobs, to be heard by ``model``; ``ValueError`` if malformed."""
    jobs = message.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise ValueError("a patches request needs a non-empty list of jobs")
    decoded, windows = [], 0
    for job in jobs:
        try:
            rate, offset, span = int(job["rate"]), float(job["offset"]), float(job["span"])
            starts = np.frombuffer(job["starts"], dtype=np.float64)
            audio = np.frombuffer(job["audio"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed job: {type(exc).__name__}: {exc}") from None
        if rate not in RATES:
            raise ValueError(f"rate {rate} Hz is not between 8 and 192 kHz")
        if not (math.isfinite(offset) and 0.0 < span <= 10.0):
            raise ValueError(f"offset {offset} or span {span} out of range")
        if audio.size == 0 or audio.size > MAX_AUDIO_S * rate:
            raise ValueError(f"{audio.size} samples: not 1 to {MAX_AUDIO_S:g} s of audio")
        if starts.size == 0 or not np.isfinite(starts).all():
            raise ValueError("a job needs finite window starts")
        windows += starts.size
        decoded.append(PatchJob(model, audio, rate, starts, span, offset))
    if windows > MAX_WINDOWS:
        raise ValueError(f"{windows} windows in one request (at most {MAX_WINDOWS})")
    return decoded


def patches_result(request_id: str, scores: list[np.ndarray] | None, error: str = "") -> dict:
    message = {"type": "score.patches.result", "request_id": request_id}
    if error:
        message["error"] = error
    else:
        message["scores"] = np.concatenate(scores).astype(np.float32).tobytes()
    return message


def split_scores(message: dict, jobs: list[PatchJob]) -> list[np.ndarray]:
    """The answer's scores, one array per job; ``RuntimeError`` for an error answer and
    ``ValueError`` for scores that do not match the jobs."""
    if message.get("error"):
        raise RuntimeError(f"scoring worker: {message['error']}")
    scores = np.frombuffer(message["scores"], dtype=np.float32)
    counts = [len(job.starts_s) for job in jobs]
    if scores.size != sum(counts):
        raise ValueError(f"{scores.size} scores answer {sum(counts)} windows")
    return np.split(scores, np.cumsum(counts)[:-1])
