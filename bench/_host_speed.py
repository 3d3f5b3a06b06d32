"""How fast this host runs one stream's signal processing: a yardstick for comparing runs.

The development machines vary: the same ``DeviceStream.feed`` of a 200 ms 16 kHz frame
(resampling, STFT, log-mel columns, windows) took 104 us on one host and 250-420 us on another
on consecutive days. The live and ingest benchmarks print this figure with their results, so a
number that moved can be told apart from a host that did.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

RATE = 16_000
FRAME = 3_200  # 200 ms
MODEL_CONFIG = Path(__file__).resolve().parents[1] / "detection/shipped/default/config.json"


def feed_us_per_frame(seconds: float = 30.0, repeats: int = 3) -> float:
    """Median over ``repeats`` of the mean CPU time per frame of ``seconds`` of noise."""
    from detection.features import FeatureConfig
    from devices.protocol import Hello
    from live.stream_state import DeviceStream

    cfg = FeatureConfig.from_dict(json.loads(MODEL_CONFIG.read_text())["features"])
    pcm = (np.random.default_rng(0).standard_normal(int(seconds * RATE)) * 3000).astype(np.int16)
    frames = [pcm[i : i + FRAME].tobytes() for i in range(0, len(pcm), FRAME)]
    results = []
    for _ in range(repeats):
        stream = DeviceStream(Hello("x", RATE, "pcm_s16le", 1, "bench", "speed"), cfg, 0.1)
        list(stream.feed(frames[0], now=1e9))  # first use builds the filter bank
        started = time.process_time()
        for frame in frames[1:]:
            list(stream.feed(frame, now=1e9))
        results.append((time.process_time() - started) / (len(frames) - 1) * 1e6)
    return round(float(np.median(results)), 1)
