"""RemoteBatcher without Redis: an in-memory channel layer and a stand-in worker task.

(The real worker over Redis is exercised in tests/live/.)"""

import asyncio
import time

import numpy as np
from channels.layers import InMemoryChannelLayer

from live.scoring_batcher import ClientStats, RemoteBatcher, ScoringTimeout
from live.scoring_messages import SCORE_CHANNEL, decode_windows, result_message


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
            futures.append((i, batcher.submit(windows(2, i / 100))))
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


def dead_worker_batcher(stale_s: float = 10.0, reply_timeout_s: float = 10.0):
    """A batcher (one request in flight) whose worker receives requests but never answers."""
    layer = InMemoryChannelLayer()
    seen: list[int] = []
    worker = asyncio.create_task(fake_worker(layer, 0.0, seen, answer=False))
    batcher = RemoteBatcher(
        layer,
        "k",
        max_wait_s=0.001,
        max_in_flight=1,
        stale_s=stale_s,
        reply_timeout_s=reply_timeout_s,
    )
    return batcher, worker, seen


def test_an_unanswered_request_stops_holding_the_next_back_after_stale_s():
    async def main():
        batcher, worker, seen = dead_worker_batcher(stale_s=0.1)
        batcher.submit(windows(1, 0.1))
        await asyncio.sleep(0.02)
        assert batcher.in_flight() == 1
        batcher.submit(windows(1, 0.2))  # held back ...
        await asyncio.sleep(0.03)
        held = list(seen)
        await asyncio.sleep(0.15)  # ... until the first one is stale, then sent
        worker.cancel()
        await batcher.close()
        return held, seen

    held, seen = asyncio.run(main())
    assert held == [1]
    assert seen == [1, 1]


def test_a_dead_worker_gets_each_request_once_more_then_its_streams_are_told():
    """Fifty streams' windows in one request: one retry message for all, then ScoringTimeout."""

    async def main():
        batcher, worker, seen = dead_worker_batcher(reply_timeout_s=0.1)
        stats = [ClientStats() for _ in range(50)]
        futures = [batcher.submit(windows(2, 0.1), s) for s in stats]
        await asyncio.sleep(0.15)
        after_one_timeout = list(seen)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        worker.cancel()
        await batcher.close()
        return after_one_timeout, seen, outcomes, stats, batcher.requests_sent

    after_one_timeout, seen, outcomes, stats, sent = asyncio.run(main())
    assert after_one_timeout == [100, 100]  # the request, then its one retry
    assert seen == [100, 100] and sent == 2
    assert all(isinstance(o, ScoringTimeout) for o in outcomes)
    assert all(s.retries == 1 and s.late == 0 for s in stats)


async def chatty_worker(layer, delay_s: float, seen: list[int]) -> None:
    from live.scoring_messages import result_message

    async def chatter(reply_channel):
        while True:
            await asyncio.sleep(0.05)
            await layer.send(reply_channel, result_message("someone-else", np.zeros(1), "v"))

    chatting = None
    while True:
        message = await layer.receive(SCORE_CHANNEL)
        seen.append(len(decode_windows(message)))
        if chatting is None:
            chatting = asyncio.create_task(chatter(message["reply_channel"]))
        await asyncio.sleep(delay_s)
        probs = decode_windows(message)[:, 0, 0]
        await layer.send(
            message["reply_channel"], result_message(message["request_id"], probs, "v1")
        )


def answering_batcher(worker_fn, delay_s: float):
    """A batcher with a 0.1 s reply timeout and a worker answering each request after delay_s."""
    layer = InMemoryChannelLayer()
    seen: list[int] = []
    worker = asyncio.create_task(worker_fn(layer, delay_s, seen))
    return RemoteBatcher(layer, "k", max_wait_s=0.001, reply_timeout_s=0.1), worker, seen


def test_a_late_answer_while_workers_answer_other_requests_is_waited_for_and_counted():
    async def main():
        batcher, worker, seen = answering_batcher(chatty_worker, 0.35)
        stats = ClientStats()
        result = await asyncio.wait_for(batcher.submit(windows(3, 0.5), stats), 5)
        worker.cancel()
        await batcher.close()
        return result, stats, seen

    (probs, version), stats, seen = asyncio.run(main())
    np.testing.assert_allclose(probs, [0.5, 0.5, 0.5])
    assert version == "v1" and seen == [3]  # never sent again
    assert stats.late >= 2 and stats.retries == 0


def test_a_process_that_was_itself_behind_does_not_take_its_answer_for_missing():
    """The event loop blocked past the timeout while the answer waited unread: late, no retry."""

    async def main():
        batcher, worker, seen = answering_batcher(fake_worker, 0.05)
        stats = ClientStats()
        future = batcher.submit(windows(1, 0.25), stats)
        await asyncio.sleep(0.01)  # sent; the worker answers at 0.05 s ...
        time.sleep(0.3)  # ... but the whole loop stalls (a busy process) past the timeout
        result = await asyncio.wait_for(future, 5)
        worker.cancel()
        await batcher.close()
        return result, stats, seen

    (probs, _), stats, seen = asyncio.run(main())
    np.testing.assert_allclose(probs, [0.25])
    assert seen == [1] and stats.retries == 0


class AbsorbingLayer(InMemoryChannelLayer):
    """A layer whose receive absorbs the first cancellation and keeps waiting, as redis-py's
    blocking pop can when the cancellation meets its own timeout."""

    absorbed = 0

    async def receive(self, channel):
        while True:
            try:
                return await super().receive(channel)
            except asyncio.CancelledError:
                if self.absorbed:
                    raise
                self.absorbed += 1


def test_close_stops_a_receiver_that_absorbed_its_first_cancellation():
    async def main():
        layer = AbsorbingLayer()
        batcher = RemoteBatcher(layer, "k", reply_timeout_s=5.0)
        batcher.submit(windows(1, 0.5))
        await asyncio.sleep(0.05)  # sent: the receiver waits for the answer
        receiver = batcher.replies.reader
        started = time.monotonic()
        await batcher.close()
        return receiver, time.monotonic() - started, layer.absorbed

    receiver, took, absorbed = asyncio.run(main())
    assert absorbed == 1
    assert receiver.cancelled()
    assert took < 1.0


def test_overlapping_windows_of_several_streams_travel_as_columns_and_come_back_in_order():
    """Each stream's windows are cuts of its own column sequence (step 2 of width 5): the
    request carries the columns once, the worker rebuilds every window exactly, and each
    stream gets the answers of its own windows."""
    rng = np.random.default_rng(0)
    columns = [rng.normal(size=(2, 40)).astype(np.float32) for _ in range(3)]

    def cuts(stream: int, first: int, count: int) -> np.ndarray:
        c = columns[stream]
        return np.stack([c[:, first + 2 * k : first + 2 * k + 5] for k in range(count)])

    async def main():
        layer = InMemoryChannelLayer(capacity=10_000)
        messages, seen = [], []

        async def worker():
            while True:
                message = await layer.receive(SCORE_CHANNEL)
                messages.append(message)
                batch = decode_windows(message)
                seen.append(batch)
                probs = batch.sum(axis=(1, 2))
                await layer.send(
                    message["reply_channel"], result_message(message["request_id"], probs, "v")
                )

        task = asyncio.create_task(worker())
        batcher = RemoteBatcher(layer, "k", max_wait_s=0.01)
        submitted = [
            (cuts(0, 0, 3), 2),
            (cuts(1, 4, 2), 2),
            (cuts(2, 0, 1), 0),
            (cuts(0, 6, 2), 2),
        ]
        futures = [batcher.submit(w, ClientStats(), step) for w, step in submitted]
        results = [await asyncio.wait_for(f, 5) for f in futures]
        task.cancel()
        await batcher.close()
        return submitted, messages, np.concatenate(seen), results

    submitted, messages, seen, results = asyncio.run(main())
    assert len(messages) == 1 and messages[0]["blocks"] == [[3, 2], [2, 2], [1, 0], [2, 2]]
    assert len(messages[0]["columns"]) == 4 * 2 * (9 + 7 + 5 + 7)  # not 8 whole windows of 10
    np.testing.assert_array_equal(seen, np.concatenate([w for w, _ in submitted]))
    for (w, _), (probs, _) in zip(submitted, results, strict=True):
        np.testing.assert_allclose(probs, w.sum(axis=(1, 2)), rtol=1e-6)
