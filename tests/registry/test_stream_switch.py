"""One stream switches model version between two windows: the windows after the switch are
scored by the new version's network, with its decision defaults; none is lost or doubled."""

from __future__ import annotations

import asyncio

import numpy as np

from detection.artifacts import load_model
from detection.decision import DecisionConfig
from detection.features import FeatureConfig
from detection.scoring import features_key
from devices.protocol import Hello
from live.model_choice import ModelChoice
from live.scoring_client import ScoringClient
from live.stream_scoring import StreamScoring
from live.stream_state import DeviceStream
from tests.detection.tiny_model import make_artifact

RATE = 16_000


async def _nothing(*args, **kwargs):
    return None


def test_a_stream_switches_version_between_two_windows(tmp_path):
    first = ModelChoice.of(1, make_artifact(tmp_path / "v1", seed=1))
    second = ModelChoice.of(2, make_artifact(tmp_path / "v2", seed=2, threshold=0.3))
    stream = DeviceStream(Hello("tok", RATE, "pcm_s16le", 1, "test"), FeatureConfig(), 0.1)
    rng = np.random.default_rng(0)
    pcm = (rng.normal(0, 0.2, 6 * RATE) * 32767).astype("<i2")  # loud: every window scored
    current = [first]
    changes = []
    received: list[tuple[int, float, int | None]] = []
    cut: dict[int, np.ndarray] = {}

    def changed(choice):
        changes.append(choice.number)
        return DecisionConfig.from_model(
            choice.config.get("decision"), choice.config["threshold"]
        ), None

    async def main():
        client = ScoringClient(None, features_key(stream.cfg), model_dir=first.path, model_number=1)
        scoring = StreamScoring(
            stream,
            client,
            DecisionConfig(level_gate_dbfs=-60.0),
            _nothing,
            _nothing,
            device_id=1,
            model_choice=lambda: current[0],
            model_changed=changed,
        )
        scored = scoring.on_scores

        async def record(cols, probs, version):
            received.extend(
                (c, float(p), client.scored_by) for c, p in zip(cols, probs, strict=True)
            )
            await scored(cols, probs, version)

        client.on_scores = record
        half = len(pcm) // 2
        frame = RATE // 5
        for start in range(0, len(pcm), frame):
            if start == half:
                current[0] = second  # promoted: the resolver's next answer
            windows = stream.feed(pcm[start : start + frame].tobytes())
            cut.update((col, window) for col, window in windows)
            scoring.push(windows)
            await asyncio.sleep(0.01)
        await client.close()
        await scoring.close()
        return scoring

    scoring = asyncio.run(main())
    assert changes == [2] and scoring.model_switches == 1
    assert scoring.tracker.config.on_threshold == 0.3  # the new version's decision defaults
    cols = [c for c, _, _ in received]
    assert cols == sorted(cut) and len(cols) == stream.stats.windows > 20  # none lost or doubled
    versions = [v for _, _, v in received]
    switch = versions.index(2)
    assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2} and switch > 0
    # Each window's score is the one its version's network gives it.
    models = {1: load_model(first.path), 2: load_model(second.path)}
    for col, prob, version in received:
        expected = models[version].predict(cut[col][None])[0]
        assert abs(prob - expected) < 1e-5, (col, version, prob, expected)
