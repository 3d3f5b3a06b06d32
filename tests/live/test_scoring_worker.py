"""The scoring worker over the real Redis channel layer: answers, batches, survives a kill."""

import asyncio
import time

import numpy as np
import pytest
from channels_redis.core import RedisChannelLayer

from detection.artifacts import load_model
from detection.features import FeatureConfig
from detection.scoring import features_key
from live.scoring_batcher import batcher_for, close_batchers
from live.scoring_client import ScoringClient
from tests.detection.tiny_model import make_artifact

from .workers import ScoringWorker, layer_hosts, redis_url

pytestmark = [pytest.mark.slow, pytest.mark.scaled]
CFG = FeatureConfig()


def windows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(-40, 12, size=(n, CFG.n_mels, CFG.window_columns)).astype(np.float32)


class Collector:
    def __init__(self):
        self.results: list[tuple[list[int], np.ndarray, str]] = []

    async def __call__(self, columns, probs, version):
        self.results.append((columns, probs, version))


async def wait_for(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_worker_scores_requests_and_a_killed_worker_falls_back_inline(tmp_path):
    url = redis_url()
    model_dir = make_artifact(tmp_path / "model", seed=5)
    model = load_model(model_dir)
    worker = ScoringWorker(
        {
            "REDIS_URL": url,
            "EYESCREAM_MODEL_DIR": str(model_dir),
            "EYESCREAM_DATA_DIR": str(tmp_path),
        },
        tmp_path / "worker.log",
    )
    batches = [windows(2, seed=i) for i in range(30)]

    async def main():
        layer = RedisChannelLayer(hosts=layer_hosts(url))
        collector = Collector()
        client = ScoringClient(
            collector,
            features_key(CFG),
            channel_layer=layer,
            reply_timeout_s=20.0,  # the first request waits for the worker to start
            model_dir=model_dir,
        )
        worker.start()
        client.submit([0, 4], batches[0])
        await wait_for(lambda: collector.results, 60)
        assert client.stats.inline == 0 and client.stats.retries == 0, worker.log()

        # Many streams' requests at once: all answered by the worker, in order.
        batcher_for(layer, features_key(CFG), model=str(model_dir)).reply_timeout_s = 1.0
        for i, batch in enumerate(batches[1:], start=1):
            client.submit([8 * i, 8 * i + 4], batch)
        await wait_for(lambda: len(collector.results) == len(batches), 10)
        assert client.stats.inline == 0

        # Kill the worker: the next request is retried once, then scored inline.
        worker.kill()
        batcher_for(layer, features_key(CFG), model=str(model_dir)).reply_timeout_s = 0.3
        client.submit([999], windows(1, seed=999))
        await wait_for(lambda: len(collector.results) == len(batches) + 1, 10)
        assert client.stats.retries == 1 and client.stats.inline == 1

        # A restarted worker takes over again.
        worker.start()
        batcher_for(layer, features_key(CFG), model=str(model_dir)).reply_timeout_s = 20.0
        client.submit([1000], windows(1, seed=1000))
        await wait_for(lambda: len(collector.results) == len(batches) + 2, 60)
        assert client.stats.inline == 1, worker.log()

        await client.close()
        await close_batchers(layer)
        await layer.flush()
        return collector.results

    try:
        results = asyncio.run(main())
    finally:
        worker.stop()
    expected = [*batches, windows(1, seed=999), windows(1, seed=1000)]
    assert [r[0][0] for r in results] == [0] + [8 * i for i in range(1, 30)] + [999, 1000]
    for (_, probs, version), batch in zip(results, expected, strict=True):
        assert version == model.version
        np.testing.assert_allclose(probs, model.predict(batch), atol=1e-5)
