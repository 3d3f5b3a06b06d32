"""The Redis channel layer of scaled mode, with one bulk reader per process.

channels_redis receives a process's messages (scoring answers, alerts for its dashboards,
device control) one at a time: a waiting consumer takes a shared lock, runs a clean-up script,
a blocking pop and a backup write, and a clean-up task must finish before the next pop. That is
four Redis round trips and several event-loop turns per message. In a daphne process busy with
a hundred or more streams it drained a few dozen messages a second: during a burst of alerts
the answers and broadcasts waited in Redis for seconds while the process's event loop was
nearly idle (docs/performance.md, "Scaled mode").

It also sends several messages to a group in two round trips (``group_send_many``, used by
``alerts.broadcasting`` for alerts) where ``group_send`` takes four per message, and hands the
group's members in this process their copies directly, without Redis: an alert reaches the
dashboards of the daphne that opened it one Redis hop sooner.

``BulkRedisChannelLayer`` keeps channels_redis for everything else (sends, groups, the
scoring worker's shared channel ``detection-score``) and replaces the receive of
process-specific channels (``specific.<process>!<id>``) with one reader task per process and
event loop: a pipelined blocking pop plus a pop of up to ``max_bulk`` more messages, one round
trip for everything waiting, handed to each channel's queue. Consumers just wait on their queue;
one that takes bursts (the dashboard) can take everything waiting at once (``receive_waiting``).

What it gives up: channels_redis's backup queue, which puts a message back if its receiver is
cancelled mid-pop. A process-specific message is only ever for this process; it can be lost
only when the process is shutting down, when nothing would read it anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels_redis.core import RedisChannelLayer
from redis.asyncio import Redis

log = logging.getLogger(__name__)

RETRY_AFTER_S = 0.5  # after a Redis error, before the reader tries again

# One message to several channel keys, each only while under its capacity (as group_send).
# KEYS: the channel keys; ARGV: one message per key, one capacity per key, score, expiry.
_ADD_UNDER_CAPACITY = """
local n = #KEYS
local over = 0
for i = 1, n do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], ARGV[2 * n + 1], ARGV[i])
        redis.call('EXPIRE', KEYS[i], ARGV[2 * n + 2])
    else
        over = over + 1
    end
end
return over
"""


class BulkRedisChannelLayer(RedisChannelLayer):
    max_bulk = 512

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reader: asyncio.Task | None = None
        self._reader_pool = None
        self.bulk_reads = 0  # round trips that brought messages
        self.bulk_messages = 0
        # This process's own members of each group (``group_send_many`` hands them their
        # messages directly), and how many messages went that way.
        self._local_groups: dict[str, set[str]] = {}
        self.local_deliveries = 0

    async def receive(self, channel: str) -> dict:
        if "!" not in channel:  # a shared channel (the scoring worker's): channels_redis
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        real_channel = self.non_local_name(channel)
        assert real_channel.endswith(self.client_prefix + "!"), "Wrong client prefix"
        self._ensure_reader(real_channel)
        queue = self.receive_buffer[channel]
        message = await queue.get()
        if queue.empty() and self.receive_buffer.get(channel) is queue:
            del self.receive_buffer[channel]  # as channels_redis: no buffer per idle channel
        return message

    def _is_own(self, channel: str) -> bool:
        """A process-specific channel this layer made (``new_channel``)."""
        return "!" in channel and self.non_local_name(channel).endswith(self.client_prefix + "!")

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        if self._is_own(channel):
            self._local_groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._local_groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._local_groups[group]
        await super().group_discard(group, channel)

    async def group_send_many(self, group: str, messages: list[dict]) -> None:
        """``group_send`` of several messages, received in this order by every member.

        Members in this process get them at once, before any Redis round trip: each message
        goes through the layer's serializer and back (what Redis would have handed over) into
        their receive queues, and they are left out of the Redis send. An alert's broadcast
        reaches the dashboards of the daphne process that opened it without waiting for Redis
        and the process's reader (two round trips and a blocking pop, each a turn of a busy
        event loop). Members elsewhere get them through Redis, in two round trips for all
        where ``group_send`` takes four per message: the group's members in one, then per Redis
        connection one pipeline of the expiry clean-up and one script per message. Each
        message gets a later score than the one before, so the members' sorted sets hand them
        out in order. ``group_send`` (one message) still goes through Redis for every member.
        """
        if not messages:
            return
        assert self.require_valid_group_name(group), "Group name not valid"
        here = set(self._local_groups.get(group, ()))  # as of now: delivered here, not below
        for message in messages if here else []:
            copy = self.deserialize(self.serialize(message))
            for channel in here:
                self.receive_buffer[channel].put_nowait(copy)
            self.local_deliveries += len(here)
        group_key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        async with connection.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(group_key, min=0, max=int(time.time()) - self.group_expiry)
            pipe.zrange(group_key, 0, -1)
            _, members = await pipe.execute()
        channel_names = [
            name for name in (member.decode("utf8") for member in members) if name not in here
        ]
        if not channel_names:
            return
        by_connection: dict[int, list] = {}
        for message in messages:
            keys_by_index, payloads, capacities = self._map_channel_keys_to_connection(
                channel_names, message
            )
            for index, keys in keys_by_index.items():
                args = [payloads[k] for k in keys] + [capacities[k] for k in keys]
                by_connection.setdefault(index, []).append((keys, args))
        for index, sends in by_connection.items():
            async with self.connection(index).pipeline(transaction=False) as pipe:
                now = time.time()
                for key in {key for keys, _ in sends for key in keys}:
                    pipe.zremrangebyscore(key, min=0, max=int(now) - int(self.expiry))
                for step, (keys, args) in enumerate(sends):
                    score = now + step * 1e-6  # distinct and increasing: kept in this order
                    pipe.eval(_ADD_UNDER_CAPACITY, len(keys), *keys, *args, score, self.expiry)
                results = await pipe.execute()
            over = sum(r for r in results[-len(sends) :] if isinstance(r, int))
            if over:
                log.info("%d channel messages over capacity in group %s", over, group)

    def receive_waiting(self, channel: str) -> list[dict]:
        """Every message already received for ``channel``, without waiting (maybe none).

        For a consumer that handles a burst in one turn of the event loop (the dashboard):
        Channels' dispatch loop costs it a task and several loop turns per message.
        """
        queue = self.receive_buffer.get(channel)
        if queue is None:
            return []
        messages = []
        while not queue.empty():
            messages.append(queue.get_nowait())
        if self.receive_buffer.get(channel) is queue:
            del self.receive_buffer[channel]  # as receive(): no buffer per idle channel
        return messages

    def _ensure_reader(self, real_channel: str) -> None:
        loop = asyncio.get_running_loop()
        reader = self._reader
        if reader is not None and not reader.done() and reader.get_loop() is loop:
            return
        self._reader = loop.create_task(self._read(real_channel), name="channel-layer-reader")

    async def _read(self, real_channel: str) -> None:
        index = self.consistent_hash(real_channel)
        key = self.prefix + real_channel
        # A connection of its own: a pop cancelled while it blocks must never hand a
        # half-read connection back to the pool the rest of the layer uses.
        pool = self._reader_pool = self.create_pool(index)
        client = Redis(connection_pool=pool)
        try:
            while not asyncio.current_task().cancelling():
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        pipe.bzpopmin(key, timeout=self.brpop_timeout)
                        pipe.zpopmin(key, self.max_bulk)
                        first, rest = await pipe.execute()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis away: the senders see it too; keep trying
                    if asyncio.current_task().cancelling():
                        raise  # redis-py turned our cancellation into a connection error
                    log.warning("channel layer: receiving failed (%s); retrying", exc)
                    await asyncio.sleep(RETRY_AFTER_S)
                    continue
                try:
                    self._take(real_channel, first, rest)
                except Exception:  # the reader must outlive a bad message: consumers wait on it
                    log.exception("channel layer: could not hand out received messages")
        finally:
            await pool.disconnect(inuse_connections=True)

    def _take(self, real_channel: str, first, rest) -> None:
        members = ([first[1]] if first else []) + [member for member, _ in rest or []]
        if members:
            self.bulk_reads += 1
            self.bulk_messages += len(members)
        for member in members:
            self._dispatch(real_channel, member)

    def _dispatch(self, real_channel: str, member: bytes) -> None:
        try:
            message = self.deserialize(member)
            if not isinstance(message, dict):
                raise TypeError(f"a channel message is a dict, not {type(message).__name__}")
        except Exception:
            log.exception("channel layer: dropped a message that could not be read")
            return
        channels = message.pop("__asgi_channel__", real_channel)
        for channel in channels if isinstance(channels, list) else [channels]:
            self.receive_buffer[channel].put_nowait(message)

    async def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None or reader.done() or reader.get_loop() is not asyncio.get_running_loop():
            return
        reader.cancel()
        # redis-py may absorb a cancellation that arrives while a blocking pop waits (and
        # wait for the pop's answer, up to brpop_timeout): closing the socket ends the wait.
        if self._reader_pool is not None:
            await self._reader_pool.disconnect(inuse_connections=True)
        await asyncio.gather(reader, return_exceptions=True)

    async def flush(self) -> None:
        await self._stop_reader()
        self._local_groups.clear()
        await super().flush()

    async def close_pools(self) -> None:
        await self._stop_reader()
        await super().close_pools()
