"""The live Scorer: batching across streams, bounded wait, reload without dropping requests."""

import asyncio
import time

import numpy as np
import pytest
import torch

from detection.artifacts import WEIGHTS_FILE, load_model
from detection.features import FeatureConfig
from detection.scoring import FeatureMismatch, Scorer, features_key, model_defaults

from .tiny_model import make_artifact

torch.set_num_threads(1)
CFG = FeatureConfig()
SHAPE = (CFG.n_mels, CFG.window_columns)


def windows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(-40, 12, size=(n, *SHAPE))).astype(np.float32)


@pytest.fixture
def model_dir(tmp_path):
    return make_artifact(tmp_path / "model", seed=1)


def test_concurrent_requests_share_batches_and_get_their_own_probabilities(model_dir):
    reference = load_model(model_dir)
    requests = [windows(2, seed=i) for i in range(40)]

    async def main():
        scorer = Scorer(model_dir, max_batch=256, max_wait_s=0.05)
        await scorer.ensure_loaded()
        # submit() queues without a task per request; score() is submit() awaited
        futures = [scorer.submit(w) for w in requests[:20]]
        results = await asyncio.gather(*futures, *(scorer.score(w) for w in requests[20:]))
        await scorer.close()
        return scorer, results

    scorer, results = asyncio.run(main())
    for w, (probs, version) in zip(requests, results, strict=True):
        assert version == reference.version
        np.testing.assert_allclose(probs, reference.predict(w), atol=1e-5)
    assert scorer.stats.requests == 40 and scorer.stats.windows == 80
    assert scorer.stats.batches <= 2  # 40 streams, one forward (two if the clock split them)


def test_batches_never_exceed_max_batch(model_dir):
    async def main():
        scorer = Scorer(model_dir, max_batch=16, max_wait_s=0.05)
        await scorer.ensure_loaded()
        await asyncio.gather(*(scorer.score(windows(3, seed=i)) for i in range(30)))
        await scorer.close()
        return scorer.stats

    stats = asyncio.run(main())
    assert stats.windows == 90
    assert stats.largest_batch <= 16
    assert stats.batches >= 90 // 16


def test_a_lone_request_waits_at_most_max_wait_and_a_full_batch_not_at_all(model_dir):
    async def timed(scorer, n):
        started = time.perf_counter()
        await scorer.score(windows(n))
        return time.perf_counter() - started

    async def main():
        scorer = Scorer(model_dir, max_batch=8, max_wait_s=0.3)
        await scorer.ensure_loaded()
        await scorer.score(windows(8))  # warm-up
        lone = await timed(scorer, 1)
        full = await timed(scorer, 8)
        await scorer.close()
        return lone, full

    lone, full = asyncio.run(main())
    assert 0.3 <= lone < 0.3 + 0.5
    assert full < 0.2


def test_without_a_wait_requests_that_arrive_during_a_forward_share_the_next(model_dir):
    """The scoring worker's setting (``max_wait_s=0``): a lone request goes at once, and the
    requests that arrive while its forward runs are taken together into one more forward."""

    async def main():
        scorer = Scorer(model_dir, max_batch=4096, max_wait_s=0.0)
        await scorer.ensure_loaded()
        await scorer.score(windows(8))  # warm-up
        before = scorer.stats.batches
        first = scorer.submit(windows(2048))  # a forward long enough to arrive during
        await asyncio.sleep(0)  # the batcher takes it and starts the forward
        assert scorer.stats.requests == 2 and not first.done()
        during = [scorer.submit(windows(3, seed=i)) for i in range(20)]
        results = await asyncio.gather(first, *during)
        await scorer.close()
        return scorer.stats.batches - before, results

    forwards, results = asyncio.run(main())
    assert forwards == 2
    assert [len(probs) for probs, _ in results] == [2048] + [3] * 20


def test_event_loop_keeps_running_during_a_forward(model_dir):
    async def main():
        scorer = Scorer(model_dir, max_batch=2048, max_wait_s=0.0)
        await scorer.ensure_loaded()
        ticks = 0
        done = False

        async def ticker():
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        await scorer.score(windows(2048))
        elapsed = time.perf_counter() - started
        done = True
        await task
        await scorer.close()
        return ticks, elapsed

    ticks, elapsed = asyncio.run(main())
    assert elapsed > 0.02
    assert ticks >= 5  # the loop kept serving while the forward ran in the scoring thread


def test_changed_artifact_is_swapped_in_without_dropping_requests(model_dir, tmp_path):
    old = load_model(model_dir).version
    probe = windows(1, seed=99)

    async def main():
        scorer = Scorer(model_dir, max_batch=64, max_wait_s=0.002, check_interval_s=0.05)
        await scorer.ensure_loaded()
        seen: list[str] = []
        stop = False

        async def stream(i):
            while not stop:
                _, version = await scorer.score(windows(2, seed=i))
                seen.append(version)
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(stream(i)) for i in range(8)]
        await asyncio.sleep(0.2)
        await asyncio.to_thread(make_artifact, model_dir, 2)  # promote a new model in place
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not seen or seen[-1] == old):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        stop = True
        await asyncio.gather(*tasks)  # any failed request would raise here
        probs, version = await scorer.score(probe)
        await scorer.close()
        return seen, probs, version, scorer.stats

    seen, probs, version, stats = asyncio.run(main())
    new = load_model(model_dir)
    assert version == new.version != old
    assert seen[0] == old and seen[-1] == new.version
    assert stats.reloads == 1
    np.testing.assert_allclose(probs, new.predict(probe), atol=1e-5)


def test_a_broken_artifact_keeps_the_old_model(model_dir):
    async def main():
        scorer = Scorer(model_dir, check_interval_s=0.0, max_wait_s=0.0)
        await scorer.ensure_loaded()
        before = scorer.version
        (model_dir / WEIGHTS_FILE).write_bytes(b"not a torch file")
        _, version = await scorer.score(windows(1))
        reloaded = await scorer.reload()
        await scorer.close()
        return before, version, reloaded, scorer.stats

    before, version, reloaded, stats = asyncio.run(main())
    assert version == before and reloaded is False
    assert stats.reload_failures >= 2


def test_explicit_reload_and_streams_of_the_previous_features(model_dir):
    other = FeatureConfig(fmin=100.0)

    async def main():
        scorer = Scorer(model_dir, max_wait_s=0.0)
        await scorer.ensure_loaded()
        first = scorer.version
        await asyncio.to_thread(make_artifact, model_dir, 3, other)
        assert await scorer.reload() is True
        old_stream = await scorer.score(windows(1), key=features_key(CFG))
        new_stream = await scorer.score(windows(1), key=features_key(other))
        with pytest.raises(FeatureMismatch, match="no loaded model"):
            await scorer.score(windows(1), key="feedbeefcafe")
        await scorer.close()
        return first, old_stream[1], new_stream[1], scorer.version

    first, old_version, new_version, active = asyncio.run(main())
    assert old_version == first  # older streams keep their model
    assert new_version == active != first


def test_rejects_malformed_windows_with_a_clear_error(model_dir):
    async def main():
        scorer = Scorer(model_dir, max_wait_s=0.0)
        with pytest.raises(ValueError, match="windows must be"):
            await scorer.score(np.zeros((64, 43), dtype=np.float32))
        with pytest.raises(ValueError, match=r"windows must be \(N, 64, 43\)"):
            await scorer.score(np.zeros((1, 64, 40), dtype=np.float32))
        probs, _ = await scorer.score(np.zeros((0, *SHAPE), dtype=np.float32))
        with pytest.raises(ValueError, match="windows must be"):  # submit raises at once
            scorer.submit(np.zeros((64, 43), dtype=np.float32))
        await scorer.close()
        return probs

    assert asyncio.run(main()).shape == (0,)


def test_model_defaults_read_the_decision_block(model_dir):
    config, decision = model_defaults(model_dir)
    assert config["threshold"] == 0.5
    assert decision.on_threshold == 0.5 and decision.smoothing_windows == 2
    assert decision.off_threshold == pytest.approx(0.35)
