"""The scoring worker's consumer in-process: answers on the reply channel, scores without
waiting for more requests (the ingest processes batch already)."""

import asyncio

import numpy as np
import pytest
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import override_settings

from detection import scoring
from detection.artifacts import load_model
from detection.features import FeatureConfig
from detection.scoring import MAX_WAIT_S, features_key, shared_scorer
from live.scoring_messages import SCORE_CHANNEL, encode_request
from live.scoring_worker import WORKER_MAX_WAIT_S, ScoringWorkerConsumer
from tests.detection.tiny_model import make_artifact

CFG = FeatureConfig()


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(scoring, "_SHARED", {})  # a scorer of this test's own
    monkeypatch.setattr(scoring, "_BY_ARGUMENT", {})
    return make_artifact(tmp_path / "model", seed=3)


def test_worker_answers_with_the_probabilities_and_does_not_wait_to_batch(model_dir):
    windows = np.random.default_rng(0).normal(-40, 12, (5, CFG.n_mels, CFG.window_columns))
    with override_settings(EYESCREAM_MODEL_DIR=str(model_dir)):
        assert (
            shared_scorer(settings.EYESCREAM_MODEL_DIR).max_wait_s
            == MAX_WAIT_S
            > WORKER_MAX_WAIT_S
            == 0.0
        )
        answer, refused = asyncio.run(exchange(windows))
    model = load_model(model_dir)
    assert answer["request_id"] == "r1" and answer["version"] == model.version
    probs = np.frombuffer(answer["probs"], dtype=np.float32)
    np.testing.assert_allclose(probs, model.predict(windows.astype(np.float32)), atol=1e-5)
    assert refused["request_id"] == "r2" and refused["error"] and "probs" not in refused


async def exchange(windows):
    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    worker = ApplicationCommunicator(
        ScoringWorkerConsumer.as_asgi(), {"type": "channel", "channel": SCORE_CHANNEL}
    )
    await worker.send_input(encode_request(windows, reply_channel, "r1", features_key(CFG)))
    answer = await layer.receive(reply_channel)
    assert shared_scorer(settings.EYESCREAM_MODEL_DIR).max_wait_s == WORKER_MAX_WAIT_S
    await worker.send_input(
        {**encode_request(windows, reply_channel, "r2", "other-features"), "shape": [5, 1]}
    )
    refused = await layer.receive(reply_channel)
    worker.stop()
    await shared_scorer(settings.EYESCREAM_MODEL_DIR).close()
    return answer, refused
