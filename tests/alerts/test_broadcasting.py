"""alerts.broadcasting: broadcasts from threads leave at once, arrive in order, and superseded
updates of one alert that waited together are sent once."""

import asyncio
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from alerts.broadcasting import (
    Broadcaster,
    latest_updates,
    runs_by_group,
    send_to_group,
    start_broadcaster,
)


class SlowLayer(InMemoryChannelLayer):
    """An in-memory layer whose group sends take ``delay`` seconds (a busy Redis)."""

    def __init__(self, delay: float, fail_first: int = 0) -> None:
        super().__init__()
        self.delay = delay
        self.fail_first = fail_first
        self.calls = 0

    async def group_send(self, group, message):
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.calls <= self.fail_first:
            raise ConnectionError("redis away")
        await super().group_send(group, message)


def numbered(message, seq):
    return {**message, "seq": seq}


def created(alert_id):
    return {"type": "alert.created", "alert": {"id": alert_id}}


def updated(alert_id, n):
    return {"type": "alert.updated", "alert": {"id": alert_id, "n": n}}


async def drain(layer, channel, n, timeout=5.0):
    return [await asyncio.wait_for(layer.receive(channel), timeout) for _ in range(n)]


def test_put_from_threads_returns_at_once_and_messages_arrive_in_order():
    async def main():
        layer = SlowLayer(delay=0.05)
        await layer.group_add("alerts", "dash")
        broadcaster = Broadcaster(layer, asyncio.get_running_loop())
        took = []

        def writer():  # an alert thread: the create, then updates of the same alert
            for message in [created(1), updated(1, 1), created(2)]:
                t0 = time.perf_counter()
                assert broadcaster.put("alerts", message)
                took.append(time.perf_counter() - t0)

        thread = threading.Thread(target=writer)
        thread.start()
        await asyncio.to_thread(thread.join)
        got = await drain(layer, "dash", 3)
        return took, got, broadcaster

    took, got, broadcaster = asyncio.run(main())
    assert max(took) < 0.02  # the layer takes 0.05 s per send: nobody waited for it
    assert got == [numbered(created(1), 1), numbered(updated(1, 1), 2), numbered(created(2), 3)]
    assert (broadcaster.sent, broadcaster.failed, broadcaster.dropped) == (3, 0, 0)


def test_updates_that_waited_together_are_sent_once_the_newest():
    async def main():
        layer = SlowLayer(delay=0.2)
        await layer.group_add("alerts", "dash")
        broadcaster = Broadcaster(layer, asyncio.get_running_loop())
        broadcaster.put("alerts", created(1))
        await asyncio.sleep(0.05)  # the create is being sent; these wait meanwhile
        for message in [updated(1, 1), created(2), updated(1, 2), updated(2, 1), updated(1, 3)]:
            broadcaster.put("alerts", message)
        got = await drain(layer, "dash", 4)
        await asyncio.sleep(0.3)
        return got, layer.calls

    got, calls = asyncio.run(main())
    # Numbered as sent: the superseded updates got no number (no gap for a dashboard).
    assert got == [
        numbered(created(1), 1),
        numbered(created(2), 2),
        numbered(updated(2, 1), 3),
        numbered(updated(1, 3), 4),
    ]
    assert calls == 4


def test_a_failed_send_is_counted_and_later_messages_still_go():
    async def main():
        layer = SlowLayer(delay=0.0, fail_first=1)
        await layer.group_add("alerts", "dash")
        broadcaster = Broadcaster(layer, asyncio.get_running_loop())
        broadcaster.put("alerts", created(1))
        await asyncio.sleep(0.05)
        broadcaster.put("alerts", created(2))
        got = await drain(layer, "dash", 1)
        return got, broadcaster

    got, broadcaster = asyncio.run(main())
    # The failed message had number 1: a dashboard sees the gap before 2.
    assert got == [numbered(created(2), 2)]
    assert (broadcaster.sent, broadcaster.failed) == (1, 1)


def test_past_the_cap_the_oldest_waiting_messages_are_dropped_and_counted():
    async def main():
        layer = SlowLayer(delay=0.2)
        await layer.group_add("alerts", "dash")
        broadcaster = Broadcaster(layer, asyncio.get_running_loop(), max_queued=3)
        broadcaster.put("alerts", created(0))
        await asyncio.sleep(0.05)  # created(0) is being sent
        for i in range(1, 7):
            broadcaster.put("alerts", created(i))
        got = await drain(layer, "dash", 4)
        return got, broadcaster

    got, broadcaster = asyncio.run(main())
    # The three dropped ones leave their numbers (2, 3, 4) unused: a gap, not a silent loss.
    assert got == [
        numbered(created(0), 1),
        numbered(created(4), 5),
        numbered(created(5), 6),
        numbered(created(6), 7),
    ]
    assert broadcaster.dropped == 3


def test_send_to_group_queues_on_a_running_broadcaster_and_waits_without_one():
    layer = get_channel_layer()

    async def main():
        await layer.group_add("alerts", "dash-queued")
        broadcaster = start_broadcaster(layer)
        assert start_broadcaster(layer) is broadcaster  # one per layer and loop
        await asyncio.to_thread(send_to_group, "alerts", created(11))
        got = await drain(layer, "dash-queued", 1)
        await layer.group_discard("alerts", "dash-queued")
        return got, broadcaster.sent

    got, sent = asyncio.run(main())
    assert [{k: v for k, v in m.items() if k != "seq"} for m in got] == [created(11)]
    assert sent == 1
    first = got[0]["seq"]

    # That loop has closed: a sync caller now sends and waits, as in a Celery worker.
    async_to_sync(layer.group_add)("alerts", "dash-direct")
    send_to_group("alerts", created(12))
    assert async_to_sync(layer.receive)("dash-direct") == numbered(created(12), first + 1)
    async_to_sync(layer.group_discard)("alerts", "dash-direct")


def test_latest_updates_keeps_creates_and_order_and_the_newest_update_of_each_alert():
    messages = [
        created(1),
        updated(1, 1),
        {"type": "devices.offline", "device_ids": [3]},
        updated(2, 1),
        updated(1, 2),
    ]
    assert latest_updates(messages) == [
        created(1),
        {"type": "devices.offline", "device_ids": [3]},
        updated(2, 1),
        updated(1, 2),
    ]
    assert latest_updates([]) == []
    # Numbered updates left out hand their numbers to the one kept (a dashboard's view).
    kept = latest_updates(
        [numbered(updated(1, 1), 7), numbered(created(2), 8), numbered(updated(1, 2), 9)]
    )
    assert kept == [numbered(created(2), 8), {**numbered(updated(1, 2), 9), "also_seq": [7]}]


def test_runs_by_group_keeps_the_order_of_groups():
    items = [("a", 1), ("a", 2), ("b", 3), ("a", 4)]
    assert runs_by_group(items) == [("a", [1, 2]), ("b", [3]), ("a", [4])]


def test_a_broadcaster_on_a_loop_that_stopped_refuses_so_the_caller_falls_back():
    loop = asyncio.new_event_loop()
    layer = InMemoryChannelLayer()

    async def make():
        return Broadcaster(layer, asyncio.get_running_loop())

    broadcaster = loop.run_until_complete(make())
    loop.close()
    assert not broadcaster.put("alerts", created(1))
