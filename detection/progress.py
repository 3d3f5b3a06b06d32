"""Progress bars of the batch commands (training, evaluation, benchmarks)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm as _tqdm


def tqdm(iterable, **kwargs):
    """A progress bar; redrawn at most every 30 s when stderr is not a terminal (logs)."""
    interactive = getattr(sys.stderr, "isatty", lambda: False)()
    kwargs.setdefault("mininterval", 0.1 if interactive else 30.0)
    return _tqdm(iterable, **kwargs)
