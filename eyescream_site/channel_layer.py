"""The Redis channel layer of scaled mode, with one bulk reader per process.

channels_redis receives a process's messages (scoring answers, alerts for its dashboards,
device control) one at a time: a waiting consumer takes a shared lock, runs a clean-up script,
a blocking pop and a backup write, and a clean-up task must finish before the next pop. That is
four Redis round trips and several event-loop turns per message. In a daphne process busy with
a hundred or more streams it drained a few dozen messages a second: during a burst of alerts
the answers and broadcasts waited in Redis for seconds while the process's event loop was
nearly idle (docs/performance.md, "Scaled mode").

``BulkRedisChannelLayer`` keeps channels_redis for everything else (sends, groups, the
scoring worker's shared channel ``detection-score``) and replaces the receive of
process-specific channels (``specific.<process>!<id>``) with one reader task per process and
event loop: a pipelined blocking pop plus a pop of up to ``max_bulk`` more messages, one round
trip for everything waiting, handed to each channel's queue. Consumers just wait on their queue.

What it gives up: channels_redis's backup queue, which puts a message back if its receiver is
cancelled mid-pop. A process-specific message is only ever for this process; it can be lost
only when the process is shutting down, when nothing would read it anyway.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.asyncio import Redis

log = logging.getLogger(__name__)

RETRY_AFTER_S = 0.5  # after a Redis error, before the reader tries again


class BulkRedisChannelLayer(RedisChannelLayer):
    max_bulk = 512

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reader: asyncio.Task | None = None
        self._reader_pool = None
        self.bulk_reads = 0  # round trips that brought messages
        self.bulk_messages = 0

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
        await super().flush()

    async def close_pools(self) -> None:
        await self._stop_reader()
        await super().close_pools()
