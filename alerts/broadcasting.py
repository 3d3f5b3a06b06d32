"""Group broadcasts from sync code, in the order they were made, without waiting for them.

Alerts are written in database threads; their broadcast (``alert.created`` / ``alert.updated``
to the ``alerts`` group) comes after the commit. With ``async_to_sync(layer.group_send)`` the
thread waited for a hop onto the event loop and the layer's Redis round trips: in a busy
ingest process 137 ms at the median, so a burst of incidents queued for the few alert threads
behind each other's broadcasts (docs/performance.md, "What the live path does and why").

A process with an event loop that writes alerts (daphne, once a live stream starts scoring)
runs a ``Broadcaster`` on that loop: ``send_to_group`` hands the message to it and returns at
once; one task sends what is waiting, in order, so a dashboard sees an alert's ``alert.created``
before its ``alert.updated``. What waited together goes in one ``group_send_many`` where the
layer has it (two Redis round trips for all), and of several ``alert.updated`` of one alert only
the newest is sent (each carries the whole alert). Anywhere else (Celery workers, management
commands, tests without a running loop) ``send_to_group`` sends and waits as before. Every
message sent gets its group's next sequence number (``seq``, from ``sequence``), so a dashboard
can tell when one went missing.

A broadcast is a notice, not the record: the alert row and snippet are already committed, and a
dashboard that connects or reloads reads them from the database. A message the layer cannot
send is logged and counted; past ``MAX_QUEUED`` waiting messages the oldest are dropped
(counted, logged at the 1st, 10th, 100th and every 1000th) rather than holding memory
without bound while Redis is away; the numbers they would have had are left unused, so the
dashboards see the gap and ask for a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .sequence import numbered

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000


class Broadcaster:
    """Sends ``(group, message)`` pairs on ``loop``, in the order ``put`` received them."""

    def __init__(self, layer, loop: asyncio.AbstractEventLoop, max_queued: int = MAX_QUEUED):
        self.layer = layer
        self.loop = loop
        self.max_queued = max_queued
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: deque[tuple[str, dict]] = deque()
        self._lost: dict[str, int] = {}  # per group, dropped since its last send
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name="group-broadcasts")

    def put(self, group: str, message: dict) -> bool:
        """Queue a message from any thread; False if this broadcaster's loop no longer runs."""
        if not self.loop.is_running() or self._task.done():
            return False
        try:
            self.loop.call_soon_threadsafe(self._enqueue, group, message)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True

    def _enqueue(self, group: str, message: dict) -> None:
        self._queue.append((group, message))
        while len(self._queue) > self.max_queued:
            lost_group, _ = self._queue.popleft()
            self._lost[lost_group] = self._lost.get(lost_group, 0) + 1
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning(
                    "broadcasts: %d dropped so far, more than %d waiting (is the channel "
                    "layer reachable?)",
                    self.dropped,
                    self.max_queued,
                )
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                waiting = list(self._queue)
                self._queue.clear()
                for group, messages in runs_by_group(waiting):
                    await self._send(group, latest_updates(messages))

    async def _send(self, group: str, messages: list[dict]) -> None:
        """Everything waiting for one group at once where the layer can (``group_send_many``:
        two Redis round trips for all, where ``group_send`` takes four per message), each
        numbered (``sequence``: one more round trip for the batch)."""
        try:
            messages = await numbered(self.layer, group, messages, self._lost.pop(group, 0))
        except Exception:
            self.failed += len(messages)
            log.exception("could not number %d messages to %s", len(messages), group)
            return
        send_many = getattr(self.layer, "group_send_many", None)
        if send_many is None:  # one message at a time (the in-memory layer)
            sends = [(1, self.layer.group_send(group, m)) for m in messages]
        else:
            sends = [(len(messages), send_many(group, messages))]
        for count, send in sends:
            try:
                await send
                self.sent += count
            except Exception:
                self.failed += count
                log.exception("could not broadcast %d messages to %s", count, group)


def runs_by_group(items: list[tuple[str, dict]]) -> list[tuple[str, list[dict]]]:
    """Consecutive ``(group, message)`` pairs of the same group, together, in order."""
    runs: list[tuple[str, list[dict]]] = []
    for group, message in items:
        if runs and runs[-1][0] == group:
            runs[-1][1].append(message)
        else:
            runs.append((group, [message]))
    return runs


def latest_updates(messages: list[dict]) -> list[dict]:
    """``messages`` in order, less each ``alert.updated`` that a later one in the list
    supersedes (every update carries the whole alert, so only the newest tells anything).

    The sequence numbers of the dropped ones (``seq``) go with the one kept, in its
    ``also_seq``: a dashboard sees them accounted for, not as a gap."""
    last: dict = {}
    folded: dict = {}
    for index, message in enumerate(messages):
        if message.get("type") == "alert.updated":
            key = _alert_id(message)
            if key in last and "seq" in messages[last[key]]:
                earlier = messages[last[key]]
                folded.setdefault(key, []).extend([*earlier.get("also_seq", []), earlier["seq"]])
            last[key] = index
    kept = []
    for index, message in enumerate(messages):
        if message.get("type") != "alert.updated":
            kept.append(message)
        elif last[_alert_id(message)] == index:
            also = folded.get(_alert_id(message))
            kept.append(
                {**message, "also_seq": [*message.get("also_seq", []), *also]} if also else message
            )
    return kept


def _alert_id(message: dict):
    alert = message.get("alert")
    return alert.get("id") if isinstance(alert, dict) else None


# Per channel layer (weakly held): the broadcaster of the loop that serves this process.
_BROADCASTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def start_broadcaster(layer) -> Broadcaster:
    """Run broadcasts of ``layer`` on the running loop from now on.

    Call from the event loop of a process whose sync threads broadcast (idempotent).
    """
    loop = asyncio.get_running_loop()
    current = _BROADCASTERS.get(layer)
    if current is None or current.loop is not loop or current._task.done():
        current = _BROADCASTERS[layer] = Broadcaster(layer, loop)
    return current


_collecting = threading.local()


@contextmanager
def collected_broadcasts() -> Iterator[list[tuple[str, dict]]]:
    """Within the block, this thread's ``send_to_group`` calls append ``(group, message)`` to
    the list it yields instead of sending: an alert writer process returns them to daphne,
    which sends them (``writer_process``)."""
    outer = getattr(_collecting, "messages", None)
    _collecting.messages = messages = []
    try:
        yield messages
    finally:
        _collecting.messages = outer


def send_to_group(group: str, message: dict) -> None:
    """Broadcast from sync code: collected inside ``collected_broadcasts``, queued on the
    process's broadcaster when one runs, otherwise sent and waited for. Raises only in the
    last case (the caller logs)."""
    collecting = getattr(_collecting, "messages", None)
    if collecting is not None:
        collecting.append((group, message))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    broadcaster = _BROADCASTERS.get(layer)
    if broadcaster is not None and broadcaster.put(group, message):
        return
    async_to_sync(_send_numbered)(layer, group, message)


async def _send_numbered(layer, group: str, message: dict) -> None:
    [message] = await numbered(layer, group, [message])
    await layer.group_send(group, message)
