"""The messages between ingest processes and ``runworker detection-score`` (scaled mode).

Request, sent to the channel ``detection-score``: ``{"type": "score.windows", "reply_channel",
"request_id", "columns", "blocks", "shape", "features", "model"}`` (``"model"``: the folder of
the registered model version to score with, ``live.model_choice``; absent or "": the worker's
``EYESCREAM_MODEL_DIR``). Answer, sent to the request's
``reply_channel``: ``{"type": "score.result", "request_id", "version", "probs" (float32 bytes)}``
or the same with ``"error"`` instead of ``"probs"``.

A request carries the log-mel **columns** its windows were cut from, not the windows: a
stream's consecutive windows overlap (at the 0.1 s stride a 43-column window shares 39 columns
with the next), so sending each window whole sent most columns two or three times: half the
bytes from ingest to worker go away (at 200 streams about 24 MB/s becomes 12 MB/s; latency on
one host did not change, ``docs/performance.md``). ``"columns"`` is float32 ``(n_mels, total)``
bytes: blocks one after the other, block ``[count, step]`` holding ``count`` windows whose
starts are ``step`` columns apart (``window_columns + (count - 1) * step`` columns; ``step`` 0
for a single window). ``"shape"`` is the windows' ``(N, n_mels, window_columns)``. The worker
rebuilds exactly the windows that were cut (``decode_windows``); windows whose columns do not
overlap as their step says are sent whole. An older request with
``"windows"`` (every window whole) is still read.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

SCORE_CHANNEL = "detection-score"

Part = tuple[np.ndarray, int]  # windows (k, n_mels, W) of one stream and their step (or 0)


def uniform_step(start_columns: Sequence[int], window_columns: int) -> int:
    """The column step between windows starting at ``start_columns`` when they are evenly
    spaced and overlap (``0 < step < window_columns``); 0 otherwise (sent whole)."""
    steps = {after - before for before, after in pairwise(start_columns)}
    step = steps.pop() if len(steps) == 1 else 0
    return step if 0 < step < window_columns else 0


def _blocks(windows: np.ndarray, step: int) -> tuple[list[list[int]], list[np.ndarray]]:
    """One part's ``[count, step]`` blocks and their column slabs (views, no copy): one block
    for overlapping windows (the first window, then the last ``step`` columns of each next
    one), else one block per window.

    The overlap is checked, not assumed: windows whose columns do not repeat as ``step`` says
    (a caller's mistake, or windows that merely start evenly spaced) travel whole."""
    count, _, width = windows.shape
    if (
        count > 1
        and 0 < step < width
        and np.array_equal(windows[1:, :, : width - step], windows[:-1, :, step:])
    ):
        return [[count, step]], [windows[0], *(w[:, width - step :] for w in windows[1:])]
    return [[1, 0]] * count, list(windows)


def encode_request(
    parts: np.ndarray | Sequence[Part],
    reply_channel: str,
    request_id: str,
    key: str,
    model: str = "",
) -> dict:
    """A request for the windows of ``parts`` in order. ``parts``: ``(windows, step)`` pairs,
    each the windows of one stream cut ``step`` columns apart from one column sequence (0: no
    such relation), or one array of windows (each sent whole)."""
    if isinstance(parts, np.ndarray):
        parts = [(parts, 0)]
    arrays = [np.asarray(w, dtype=np.float32) for w, _ in parts]
    if not arrays or any(a.ndim != 3 for a in arrays):
        raise ValueError("windows must be (N, n_mels, window_columns) arrays")
    _, n_mels, width = arrays[0].shape
    blocks: list[list[int]] = []
    slabs: list[np.ndarray] = [np.zeros((n_mels, 0), dtype=np.float32)]
    for array, (_, step) in zip(arrays, parts, strict=True):
        part_blocks, part_slabs = _blocks(array, step)
        blocks += part_blocks
        slabs += part_slabs
    message = {
        "type": "score.windows",
        "reply_channel": reply_channel,
        "request_id": request_id,
        "columns": np.concatenate(slabs, axis=1).tobytes(),  # the one copy
        "blocks": blocks,
        "shape": [sum(a.shape[0] for a in arrays), n_mels, width],
        "features": key,
    }
    if model:
        message["model"] = model
    return message


def decode_windows(message: dict) -> np.ndarray:
    """The request's windows ``(N, n_mels, window_columns)``; ``ValueError`` if malformed."""
    shape = tuple(int(n) for n in message["shape"])
    if len(shape) != 3:
        raise ValueError(f"windows shape must have 3 numbers, got {list(shape)}")
    if "windows" in message:  # an ingest process of an earlier release
        return np.frombuffer(message["windows"], dtype=np.float32).reshape(shape)
    count, n_mels, width = shape
    blocks = [(int(c), int(s)) for c, s in message["blocks"]]
    total = sum(width + (c - 1) * s for c, s in blocks)
    columns = np.frombuffer(message["columns"], dtype=np.float32)
    if columns.size != n_mels * total or sum(c for c, _ in blocks) != count:
        raise ValueError(f"columns and blocks do not make {count} windows of {n_mels}x{width}")
    columns = columns.reshape(n_mels, total)
    windows = np.empty(shape, dtype=np.float32)
    done = start = 0
    for block_count, step in blocks:
        if block_count < 1 or (block_count > 1 and not 0 < step < width):
            raise ValueError(f"bad block [{block_count}, {step}]")
        span = width + (block_count - 1) * step
        view = np.lib.stride_tricks.sliding_window_view(
            columns[:, start : start + span], width, axis=1
        )  # (n_mels, span - width + 1, width)
        windows[done : done + block_count] = view[:, :: step or 1].transpose(1, 0, 2)
        done += block_count
        start += span
    return windows


def result_message(request_id: str, probs: np.ndarray | None, version: str, error: str = ""):
    message = {"type": "score.result", "request_id": request_id, "version": version}
    if error:
        message["error"] = error
    else:
        message["probs"] = np.asarray(probs, dtype=np.float32).tobytes()
    return message
