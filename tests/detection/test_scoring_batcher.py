"""RemoteBatcher without Redis: an in-memory channel layer and a stand-in worker task.

(The real worker over Redis is exercised in tests/live/.)"""

import asyncio

import numpy as np
from channels.layers import InMemoryChannelLayer

from detection.scoring_batcher import RemoteBatcher
from detection.scoring_messages import SCORE_CHANNEL, decode_windows, result_message


def windows(n: int, value: float) -> np.ndarray:
    return np.full((n, 2, 3), value, dtype=np.float32)


async def fake_worker(layer, delay_s: float, seen: list[int], answer=True) -> None:
    """Answers each request with each window's first value as its probability."""
    while True:
        message = await layer.receive(SCORE_CHANNEL)
        batch = decode_windows(message)
        seen.append(len(batch))
        await asyncio.sleep(delay_s)
        if answer:
            probs = batch[:, 0, 0]
            await layer.send(
                message["reply_channel"], result_message(message["request_id"], probs, "v1")
            )


def test_a_slow_worker_gets_fewer_bigger_requests_and_every_window_its_answer():
    async def main():
        layer = InMemoryChannelLayer(capacity=10_000)
        seen: list[int] = []
        worker = asyncio.create_task(fake_worker(layer, 0.05, seen))
        batcher = RemoteBatcher(layer, "k", max_wait_s=0.002, max_in_flight=2)
        futures = []
        for i in range(60):  # a request every 5 ms, far more often than answers come
            futures.append((i, await batcher.submit(windows(2, i / 100))))
            assert batcher.in_flight() <= 2
            await asyncio.sleep(0.005)
        results = [(i, await asyncio.wait_for(f, 5)) for i, f in futures]
        worker.cancel()
        await batcher.close()
        return batcher, seen, results

    batcher, seen, results = asyncio.run(main())
    for i, (probs, version) in results:
        assert version == "v1"
        np.testing.assert_allclose(probs, [i / 100, i / 100])
    assert sum(seen) == 120  # every window scored once
    assert len(seen) < 20 and max(seen) > 4  # not 60 requests of 2: they waited and merged
    assert batcher.held_back > 0


def dead_worker_batcher(stale_s: float):
    """A batcher (one request in flight) whose worker receives requests but never answers."""
    layer = InMemoryChannelLayer()
    seen: list[int] = []
    worker = asyncio.create_task(fake_worker(layer, 0.0, seen, answer=False))
    batcher = RemoteBatcher(layer, "k", max_wait_s=0.001, max_in_flight=1, stale_s=stale_s)
    return batcher, worker, seen


def test_an_unanswered_request_stops_holding_the_next_back_after_stale_s():
    async def main():
        batcher, worker, seen = dead_worker_batcher(stale_s=0.1)
        await batcher.submit(windows(1, 0.1))
        await asyncio.sleep(0.02)
        assert batcher.in_flight() == 1
        await batcher.submit(windows(1, 0.2))  # held back ...
        await asyncio.sleep(0.03)
        held = list(seen)
        await asyncio.sleep(0.15)  # ... until the first one is stale, then sent
        worker.cancel()
        await batcher.close()
        return held, seen

    held, seen = asyncio.run(main())
    assert held == [1]
    assert seen == [1, 1]


def test_a_retry_is_sent_soon_even_with_its_first_request_in_flight():
    async def main():
        batcher, worker, seen = dead_worker_batcher(stale_s=10)
        await batcher.submit(windows(1, 0.1))
        await asyncio.sleep(0.02)
        await batcher.submit(windows(3, 0.1))  # an ordinary request: held back
        await asyncio.sleep(0.02)
        held = list(seen)
        await batcher.submit(windows(2, 0.1), retry=True)  # goes now, with the held one
        await asyncio.sleep(0.02)
        worker.cancel()
        await batcher.close()
        return held, seen

    held, seen = asyncio.run(main())
    assert held == [1]
    assert seen == [1, 5]


def test_retries_of_the_same_moment_travel_as_one_request():
    """A stall that times out every stream at once must not become one send per stream."""

    async def main():
        batcher, worker, seen = dead_worker_batcher(stale_s=10)
        await batcher.submit(windows(1, 0.1))
        await asyncio.sleep(0.02)
        for _ in range(50):  # every stream's retry within the same tick
            await batcher.submit(windows(2, 0.1), retry=True)
        await asyncio.sleep(0.05)
        worker.cancel()
        await batcher.close()
        return seen, batcher.requests_sent

    seen, sent = asyncio.run(main())
    assert seen == [1, 100]
    assert sent == 2
