"""ScoringClient in scaled mode when the channel layer itself fails: scored inline, counted."""

import asyncio

import numpy as np
from redis.exceptions import MaxConnectionsError

from detection.artifacts import load_model
from detection.features import FeatureConfig
from detection.scoring import features_key
from detection.scoring_client import ScoringClient

from .tiny_model import make_artifact

CFG = FeatureConfig()


class FailingLayer:
    """A channel layer whose sends fail the way redis-py 8 does when its pool is exhausted."""

    def __init__(self) -> None:
        self.sends = 0

    async def new_channel(self) -> str:
        return "specific.test!replies"

    async def receive(self, channel) -> dict:
        await asyncio.Event().wait()  # nothing ever arrives

    async def send(self, channel, message) -> None:
        self.sends += 1
        raise MaxConnectionsError("Too many connections")


def test_a_failing_channel_layer_scores_inline_and_counts_it(tmp_path):
    model_dir = make_artifact(tmp_path / "model", seed=3)
    windows = np.random.default_rng(0).normal(-40, 12, (3, CFG.n_mels, CFG.window_columns))
    windows = windows.astype(np.float32)
    results = []

    async def on_scores(columns, probs, version):
        results.append((columns, probs, version))

    async def main():
        layer = FailingLayer()
        client = ScoringClient(
            on_scores,
            features_key(CFG),
            channel_layer=layer,
            reply_timeout_s=5.0,
            model_dir=model_dir,
        )
        client.submit([0, 4, 8], windows)
        await client.close()
        return layer, client

    layer, client = asyncio.run(main())
    assert layer.sends == 1  # no waiting for a reply that cannot come, no second send
    assert client.stats.layer_errors == 1 and client.stats.inline == 1
    assert client.stats.failed == 0
    [(columns, probs, version)] = results
    model = load_model(model_dir)
    assert columns == [0, 4, 8] and version == model.version
    np.testing.assert_allclose(probs, model.predict(windows), atol=1e-5)
