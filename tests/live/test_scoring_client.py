"""ScoringClient in scaled mode: a failing channel layer or a dead worker is scored inline and
counted; a late answer while workers are answering is waited for."""

import asyncio

import numpy as np
from redis.exceptions import MaxConnectionsError

from detection.artifacts import load_model
from detection.features import FeatureConfig
from detection.scoring import features_key
from live.scoring_batcher import close_batchers
from live.scoring_client import ScoringClient
from live.scoring_messages import decode_windows, result_message
from tests.detection.tiny_model import make_artifact

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


class SlowWorkerLayer:
    """An in-memory channel layer with a worker that answers every request ``delay_s`` late,
    and meanwhile keeps answering other (unknown) requests every ``chatter_s``: alive, busy."""

    def __init__(self, delay_s: float, chatter_s: float | None) -> None:
        self.delay_s, self.chatter_s = delay_s, chatter_s
        self.sends = 0
        self.replies: asyncio.Queue = asyncio.Queue()

    async def new_channel(self) -> str:
        if self.chatter_s is not None:
            asyncio.get_running_loop().create_task(self._chatter())
        return "specific.test!replies"

    async def _chatter(self) -> None:
        while True:
            await asyncio.sleep(self.chatter_s)
            await self.replies.put(result_message("someone-else", np.zeros(1), "v"))

    async def receive(self, channel) -> dict:
        return await self.replies.get()

    async def send(self, channel, message) -> None:
        self.sends += 1
        windows = decode_windows(message)

        async def answer():
            await asyncio.sleep(self.delay_s)
            probs = np.full(len(windows), 0.25, dtype=np.float32)
            await self.replies.put(result_message(message["request_id"], probs, "worker-v"))

        asyncio.get_running_loop().create_task(answer())


def _score_once(layer, model_dir, reply_timeout_s: float):
    windows = np.zeros((2, CFG.n_mels, CFG.window_columns), dtype=np.float32)
    results = []

    async def on_scores(columns, probs, version):
        results.append((columns, probs, version))

    async def main():
        client = ScoringClient(
            on_scores,
            features_key(CFG),
            channel_layer=layer,
            reply_timeout_s=reply_timeout_s,
            model_dir=model_dir,
        )
        client.submit([0, 4], windows)
        await client.close()
        await close_batchers(layer)
        return client

    return asyncio.run(main()), results


def test_a_late_answer_while_workers_are_answering_is_waited_for_not_scored_inline(tmp_path):
    model_dir = make_artifact(tmp_path / "model", seed=3)
    layer = SlowWorkerLayer(delay_s=0.6, chatter_s=0.05)
    client, results = _score_once(layer, model_dir, reply_timeout_s=0.2)
    assert client.stats.late >= 2 and client.stats.retries == 0 and client.stats.inline == 0
    assert layer.sends == 1
    [(columns, probs, version)] = results
    assert columns == [0, 4] and version == "worker-v"
    np.testing.assert_allclose(probs, [0.25, 0.25])


def test_a_late_answer_with_no_worker_answering_is_retried_then_scored_inline(tmp_path):
    model_dir = make_artifact(tmp_path / "model", seed=3)
    layer = SlowWorkerLayer(delay_s=5.0, chatter_s=None)
    client, results = _score_once(layer, model_dir, reply_timeout_s=0.2)
    assert client.stats.late == 0 and client.stats.retries == 1 and client.stats.inline == 1
    assert layer.sends == 2
    [(_, _, version)] = results
    assert version == load_model(model_dir).version
