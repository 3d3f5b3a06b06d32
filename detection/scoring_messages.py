"""The messages between ingest processes and ``runworker detection-score`` (scaled mode).

Request, sent to the channel ``detection-score``: ``{"type": "score.windows", "reply_channel",
"request_id", "windows" (float32 bytes), "shape", "features"}``. Answer, sent to the request's
``reply_channel``: ``{"type": "score.result", "request_id", "version", "probs" (float32 bytes)}``
or the same with ``"error"`` instead of ``"probs"``.
"""

from __future__ import annotations

import numpy as np

SCORE_CHANNEL = "detection-score"


def encode_request(windows: np.ndarray, reply_channel: str, request_id: str, key: str) -> dict:
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    return {
        "type": "score.windows",
        "reply_channel": reply_channel,
        "request_id": request_id,
        "windows": windows.tobytes(),
        "shape": list(windows.shape),
        "features": key,
    }


def decode_windows(message: dict) -> np.ndarray:
    shape = tuple(int(n) for n in message["shape"])
    return np.frombuffer(message["windows"], dtype=np.float32).reshape(shape)


def result_message(request_id: str, probs: np.ndarray | None, version: str, error: str = ""):
    message = {"type": "score.result", "request_id": request_id, "version": version}
    if error:
        message["error"] = error
    else:
        message["probs"] = np.asarray(probs, dtype=np.float32).tobytes()
    return message
