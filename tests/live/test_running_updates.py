"""RunningUpdates: the newest scores of each running alert, written for all streams together
and in order; an alert's final update never lands before an older batch of its scores."""

import asyncio

from live.running_updates import RunningUpdates


class Recorder:
    """A write that takes ``delay`` seconds and records each batch (fails the first ``fail``)."""

    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.delay = delay
        self.fail = fail
        self.batches: list[dict] = []
        self.active = 0

    async def __call__(self, batch: dict) -> None:
        self.active += 1
        try:
            await asyncio.sleep(self.delay)
            if len(self.batches) < self.fail:
                self.batches.append({})
                raise ConnectionError("database away")
            self.batches.append(dict(batch))
        finally:
            self.active -= 1


def test_the_newest_scores_of_every_alert_go_in_one_write_per_interval():
    async def main():
        write = Recorder()
        running = RunningUpdates(write, interval_s=0.05)
        for step in range(3):
            for alert_id in (1, 2, 3):
                running.put(alert_id, (alert_id, step))
        await asyncio.sleep(0.15)
        running.put(2, (2, 9))
        await asyncio.sleep(0.15)
        await running.close()
        return write.batches, running

    batches, running = asyncio.run(main())
    assert batches == [{1: (1, 2), 2: (2, 2), 3: (3, 2)}, {2: (2, 9)}]
    assert (running.batches, running.written, running.failed) == (2, 4, 0)


def test_settle_drops_waiting_scores_and_waits_for_a_write_that_holds_them():
    async def main():
        write = Recorder(delay=0.2)
        running = RunningUpdates(write, interval_s=0.01)
        running.put(1, "old")
        running.put(2, "other")
        await asyncio.sleep(0.05)  # the batch {1, 2} is being written (0.2 s)
        running.put(1, "newer")  # waits for the next batch
        assert write.active == 1
        await running.settle(1)
        done_when_settled = write.active == 0 and len(write.batches) == 1
        await asyncio.sleep(0.3)
        await running.close()
        return done_when_settled, write.batches

    done_when_settled, batches = asyncio.run(main())
    assert done_when_settled  # the final update may go now: nothing older can follow it
    assert batches == [{1: "old", 2: "other"}]  # "newer" was dropped by settle


def test_settle_of_an_alert_not_being_written_does_not_wait():
    async def main():
        write = Recorder(delay=0.5)
        running = RunningUpdates(write, interval_s=0.01)
        running.put(1, "a")
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await running.settle(2)
        waited = loop.time() - t0
        await running.close()
        return waited

    assert asyncio.run(main()) < 0.1


def test_a_failed_write_is_counted_and_later_batches_still_go():
    async def main():
        write = Recorder(fail=1)
        running = RunningUpdates(write, interval_s=0.02)
        running.put(1, "lost")
        await asyncio.sleep(0.1)
        running.put(1, "kept")
        await asyncio.sleep(0.1)
        await running.close()
        return write.batches, running.failed

    batches, failed = asyncio.run(main())
    assert batches == [{}, {1: "kept"}] and failed == 1


def test_close_writes_what_waits():
    async def main():
        write = Recorder()
        running = RunningUpdates(write, interval_s=10.0)
        running.put(7, "last")
        await running.close()
        return write.batches

    assert asyncio.run(main()) == [{7: "last"}]
