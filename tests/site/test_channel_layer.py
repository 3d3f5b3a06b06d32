"""BulkRedisChannelLayer on the real local Redis: every message reaches its process-local
channel in order, group sends reach every local member, a backlog is taken in few round
trips, and shared channels keep channels_redis's receive."""

import asyncio
import threading
import time

from eyescream_site.channel_layer import BulkRedisChannelLayer
from tests.live.workers import layer_hosts, redis_url

URL = redis_url()


def run_with_layer(body):
    async def main():
        layer = BulkRedisChannelLayer(hosts=layer_hosts(URL), capacity=10_000)
        try:
            return await body(layer)
        finally:
            await layer.flush()
            await layer.close_pools()

    return asyncio.run(main())


def test_local_channels_get_their_own_messages_in_order():
    async def body(layer):
        a, b = await layer.new_channel(), await layer.new_channel()
        for i in range(50):
            await layer.send(a if i % 2 else b, {"type": "t", "i": i})
        got_a = [(await asyncio.wait_for(layer.receive(a), 5))["i"] for _ in range(25)]
        got_b = [(await asyncio.wait_for(layer.receive(b), 5))["i"] for _ in range(25)]
        return got_a, got_b

    got_a, got_b = run_with_layer(body)
    assert got_a == list(range(1, 50, 2))
    assert got_b == list(range(0, 50, 2))


async def send_from_elsewhere(channel: str, n: int = 300) -> None:
    other = BulkRedisChannelLayer(hosts=layer_hosts(URL), capacity=10_000)
    for i in range(n):
        await other.send(channel, {"type": "t", "i": i})
    await other.close_pools()


def test_a_backlog_is_taken_in_bulk_not_one_round_trip_each():
    async def body(layer):
        channel = await layer.new_channel()
        first = asyncio.ensure_future(layer.receive(channel))
        await layer.send(channel, {"type": "t", "i": -1})
        await asyncio.wait_for(first, 5)  # the reader is running
        reads_before = layer.bulk_reads
        # Another process sends 300 while this one is busy (its event loop blocked): they
        # wait in Redis, as a busy daphne's answers and broadcasts did.
        thread = threading.Thread(target=asyncio.run, args=(send_from_elsewhere(channel),))
        thread.start()
        thread.join()
        got = [(await asyncio.wait_for(layer.receive(channel), 5))["i"] for _ in range(300)]
        return got, layer.bulk_reads - reads_before

    got, reads = run_with_layer(body)
    assert got == list(range(300))
    assert reads < 30  # upstream: one pop (and three more round trips) per message


def test_a_group_send_reaches_every_local_member_and_waiting_receivers_wake():
    async def body(layer):
        members = [await layer.new_channel() for _ in range(3)]
        for channel in members:
            await layer.group_add("dashboards", channel)
        waiting = [asyncio.ensure_future(layer.receive(c)) for c in members]
        await asyncio.sleep(0.05)
        await layer.group_send("dashboards", {"type": "alert.created", "alert": {"id": 7}})
        return await asyncio.wait_for(asyncio.gather(*waiting), 5)

    messages = run_with_layer(body)
    assert messages == [{"type": "alert.created", "alert": {"id": 7}}] * 3


def test_shared_channels_keep_the_upstream_receive():
    async def body(layer):
        await layer.send("detection-score", {"type": "score.windows", "n": 1})
        message = await asyncio.wait_for(layer.receive("detection-score"), 5)
        return message, layer.bulk_reads

    message, reads = run_with_layer(body)
    assert message == {"type": "score.windows", "n": 1}
    assert reads == 0


def test_an_unreadable_message_is_dropped_and_the_reader_goes_on():
    async def body(layer):
        channel = await layer.new_channel()
        key = layer.prefix + layer.non_local_name(channel)
        await layer.send(channel, {"type": "t", "i": 1})
        # Between the two (channels_redis drops members scored older than its expiry).
        await layer.connection(0).zadd(key, {b"\x00not msgpack\xff": time.time()})
        await layer.send(channel, {"type": "t", "i": 2})
        return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(2)]

    assert run_with_layer(body) == [{"type": "t", "i": 1}, {"type": "t", "i": 2}]


def test_group_send_many_reaches_members_of_two_processes_in_order():
    async def body(layer):
        other = BulkRedisChannelLayer(hosts=layer_hosts(URL), capacity=10_000)
        try:
            here = [await layer.new_channel() for _ in range(2)]
            there = await other.new_channel()
            for channel in here:
                await layer.group_add("dashboards", channel)
            await other.group_add("dashboards", there)
            messages = [{"type": "alert.updated", "alert": {"id": i}} for i in range(200)]
            await layer.group_send_many("dashboards", messages)
            got_here = [
                [(await asyncio.wait_for(layer.receive(c), 5))["alert"]["id"] for _ in range(200)]
                for c in here
            ]
            got_there = [
                (await asyncio.wait_for(other.receive(there), 5))["alert"]["id"] for _ in range(200)
            ]
            return got_here, got_there
        finally:
            await other.flush()
            await other.close_pools()

    got_here, got_there = run_with_layer(body)
    assert got_here == [list(range(200))] * 2
    assert got_there == list(range(200))


def test_group_send_many_hands_local_members_their_copy_directly_and_each_member_one():
    async def body(layer):
        other = BulkRedisChannelLayer(hosts=layer_hosts(URL), capacity=10_000)
        try:
            here, there = await layer.new_channel(), await other.new_channel()
            leaving = await layer.new_channel()
            for channel in (here, leaving):
                await layer.group_add("dashboards", channel)
            await other.group_add("dashboards", there)
            await layer.group_discard("dashboards", leaving)
            messages = [
                {"type": "alert.created", "alert": {"id": i, "at": (1, 2)}} for i in range(3)
            ]
            reads = layer.bulk_reads
            await layer.group_send_many("dashboards", messages)
            # Already waiting in the local member's queue: no reader, no round trip.
            local = layer.receive_waiting(here)
            assert layer.bulk_reads == reads and layer.local_deliveries == 3
            remote = [await asyncio.wait_for(other.receive(there), 5) for _ in range(3)]
            # The sender's own member got no second copy through Redis, the one that left none.
            await layer.send(here, {"type": "marker"})
            after = await asyncio.wait_for(layer.receive(here), 5)
            await layer.send(leaving, {"type": "marker"})
            left = await asyncio.wait_for(layer.receive(leaving), 5)
            # The other process's members get theirs from Redis, and its local deliveries stay 0.
            await other.group_send_many("dashboards", messages[:1])
            back = await asyncio.wait_for(layer.receive(here), 5)
            return local, remote, after, left, back, other.local_deliveries
        finally:
            await other.flush()
            await other.close_pools()

    local, remote, after, left, back, other_local = run_with_layer(body)
    expected = [{"type": "alert.created", "alert": {"id": i, "at": [1, 2]}} for i in range(3)]
    assert local == expected  # as Redis would hand them over (a tuple becomes a list)
    assert remote == expected
    assert after == {"type": "marker"} and left == {"type": "marker"}
    assert back == expected[0] and other_local == 1


def test_group_send_many_to_an_empty_group_or_with_no_messages_does_nothing():
    async def body(layer):
        channel = await layer.new_channel()
        await layer.group_send_many("nobody", [{"type": "t"}])
        await layer.group_add("g", channel)
        await layer.group_send_many("g", [])
        await layer.group_send("g", {"type": "t", "i": 1})
        return await asyncio.wait_for(layer.receive(channel), 5)

    assert run_with_layer(body) == {"type": "t", "i": 1}


def test_receive_waiting_hands_over_what_arrived_without_waiting():
    async def body(layer):
        channel = await layer.new_channel()
        assert layer.receive_waiting(channel) == []
        for i in range(5):
            await layer.send(channel, {"type": "t", "i": i})
        first = await asyncio.wait_for(layer.receive(channel), 5)
        deadline = time.monotonic() + 5
        rest = []
        while len(rest) < 4 and time.monotonic() < deadline:
            rest += layer.receive_waiting(channel)
            await asyncio.sleep(0.01)
        await layer.send(channel, {"type": "t", "i": 5})
        after = await asyncio.wait_for(layer.receive(channel), 5)
        return first["i"], [m["i"] for m in rest], after["i"]

    assert run_with_layer(body) == (0, [1, 2, 3, 4], 5)
