"""Batched device-health writes and the periodic access check for all live streams of a process.

Per-frame database writes would not scale to hundreds of streams, so each process keeps one
``HealthFlusher`` (created on first use, bound to the event loop): every ``CHECK_INTERVAL_S`` it
reads the access row of every live device in one query and closes streams whose token or device
is no longer valid (the fallback for changes that reach no channel layer group); every
``FLUSH_INTERVAL_S`` it writes the statistics of all live streams in one transaction and then
acks each stream's stored sample count to its client.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.utils import timezone

from devices.models import Device
from devices.services import DeviceAccess, access_rows

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.5
FLUSH_INTERVAL_S = 1.0


@dataclass
class HealthDelta:
    """What one stream adds to its device row since the last flush."""

    device_id: int
    frames: int
    rejected: int
    windows: int
    level_dbfs: float | None
    clipping: bool
    stream_samples: int  # total of this stream id stored after this write (the ack)
    samples: int  # samples this connection received since its last write
    rate: int  # the stream's sample rate (samples_received -> seconds_received)
    connection: str  # the writing connection's channel name
    stream_id: str  # its hello's stream id ("" for none)


class LiveStream(Protocol):
    device_id: int

    def health_delta(self) -> HealthDelta | None: ...

    async def after_flush(self, delta: HealthDelta) -> None: ...

    async def check_access(self, row: DeviceAccess | None) -> None: ...


INCREMENTED = ["frames_received", "frames_rejected", "windows"]
# connection_state: a stream that is flushing is online, even if the offline sweep marked it
# offline during a silent minute.
ASSIGNED = ["level_dbfs", "clipping", "last_seen", "connection_state"]


def _update_sql() -> str:
    """The UPDATE of one device's health; its parameters are ``_row(delta)``'s.

    Audio is counted once, by its position in the stream id: while the writing connection owns
    the device's stream (it is the device's connection, or a newer connection resumed the same
    stream id), ``samples_received`` grows only by the samples beyond ``stream_samples`` (the
    stored position), so audio that a resuming or replacing connection re-sends is not counted
    twice. A connection replaced by another stream adds what it received since its last write
    and leaves the position alone. Every expression reads the row as it was before the UPDATE.
    """
    meta = Device._meta
    quote = connection.ops.quote_name
    names = INCREMENTED + ASSIGNED
    names += ["samples_received", "seconds_received", "stream_samples", "connection", "stream_id"]
    column = {name: quote(meta.get_field(name).column) for name in names}
    stored, stream_id = column["stream_samples"], column["stream_id"]
    owns = f"({column['connection']} = %s OR ({stream_id} <> '' AND {stream_id} = %s))"
    new = f"CASE WHEN {owns} THEN CASE WHEN %s > {stored} THEN %s - {stored} ELSE 0 END ELSE %s END"
    sets = [f"{column[n]} = {column[n]} + %s" for n in INCREMENTED]
    sets += [f"{column[n]} = %s" for n in ASSIGNED]
    sets += [
        f"{column['samples_received']} = {column['samples_received']} + {new}",
        f"{column['seconds_received']} = {column['seconds_received']} + ({new}) * %s",
        f"{stored} = CASE WHEN {owns} AND %s > {stored} THEN %s ELSE {stored} END",
    ]
    pk = quote(meta.pk.column)
    return f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {pk} = %s"


def _row(d: HealthDelta, level, clipping, last_seen) -> tuple:
    owns = (d.connection, d.stream_id)
    counted = (*owns, d.stream_samples, d.stream_samples, d.samples)
    return (
        d.frames,
        d.rejected,
        d.windows,
        level,
        clipping,
        last_seen,
        Device.ONLINE,
        *counted,
        *counted,
        1.0 / d.rate,
        *owns,
        d.stream_samples,
        d.stream_samples,
        d.device_id,
    )


def write_deltas(deltas: list[HealthDelta], now: datetime) -> None:
    """One transaction, one prepared UPDATE run for all devices (``executemany``).

    Counters are incremented in the database. At hundreds of streams the ORM's per-row
    ``update()`` would cost a good part of a core every second; this costs a few milliseconds.
    """
    field = Device._meta.get_field
    last_seen = field("last_seen").get_db_prep_value(now, connection)
    clipping, level = field("clipping"), field("level_dbfs")
    rows = [
        _row(
            d,
            level.get_db_prep_value(d.level_dbfs, connection),  # never NaN or infinite
            clipping.get_db_prep_value(d.clipping, connection),
            last_seen,
        )
        for d in deltas
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_update_sql(), rows)


class HealthFlusher:
    def __init__(self) -> None:
        self.streams: dict[str, LiveStream] = {}
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    def add(self, key: str, stream: LiveStream) -> None:
        self.streams[key] = stream
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def remove(self, key: str) -> None:
        """Stop tracking a stream after writing what it has not written yet."""
        stream = self.streams.pop(key, None)
        if stream is not None:
            async with self._lock:
                delta = stream.health_delta()
                if delta is not None:
                    await database_sync_to_async(write_deltas)([delta], timezone.now())

    async def _run(self) -> None:
        ticks_per_flush = max(1, round(FLUSH_INTERVAL_S / CHECK_INTERVAL_S))
        tick = 0
        while self.streams:
            await asyncio.sleep(CHECK_INTERVAL_S)
            tick += 1
            try:
                await self.check_all()
                if tick % ticks_per_flush == 0:
                    await self.flush_all()
            except Exception:  # keep serving; the next round retries
                log.exception("device health round failed")

    async def check_all(self) -> None:
        streams = list(self.streams.values())
        if not streams:
            return
        rows = await database_sync_to_async(access_rows)({s.device_id for s in streams})
        for stream in streams:
            await stream.check_access(rows.get(stream.device_id))

    async def flush_all(self) -> None:
        async with self._lock:
            pending = [(s, s.health_delta()) for s in list(self.streams.values())]
            pending = [(s, d) for s, d in pending if d is not None]
            if not pending:
                return
            await database_sync_to_async(write_deltas)([d for _, d in pending], timezone.now())
        for stream, delta in pending:
            await stream.after_flush(delta)


_flushers: dict[int, HealthFlusher] = {}


def flusher() -> HealthFlusher:
    """This event loop's flusher (one per process in daphne)."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _flushers:
        _flushers.clear()  # a new loop (tests) replaces the old one
        _flushers[loop_id] = HealthFlusher()
    return _flushers[loop_id]
