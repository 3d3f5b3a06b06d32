"""A process's own reply channel on the channel layer, and the one task that reads it.

The scoring clients (``scoring_batcher.RemoteBatcher`` for the network's windows,
``yamnet_remote.RemoteYamnet`` for the second stage's) each send requests with a reply channel
of their own and hand every answer that comes back to ``on_message``. ``ReplyChannel`` makes
the channel and starts its reader at the first ``name()``, starts the reader again after the
channel layer failed a receive (logged), and stops it in ``close()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
CANCEL_AGAIN_S = 0.2


class ReplyChannel:
    def __init__(self, layer, on_message: Callable[[dict], None], what: str) -> None:
        self.layer = layer
        self.on_message = on_message
        self.what = what  # for the log: "scoring replies", ...
        self.loop = asyncio.get_running_loop()
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def name(self) -> str:
        """The channel's name, with its reader running."""
        if self.channel is None or self.reader is None or self.reader.done():
            async with self._lock:
                if self.channel is None:
                    self.channel = await self.layer.new_channel()
                if self.reader is None or self.reader.done():
                    self.reader = self.loop.create_task(self._read())
        return self.channel

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next name() starts a new reader
                log.warning("%s: channel layer receive failed: %s", self.what, exc)
                return
            self.on_message(message)

    async def close(self) -> None:
        """Stop the reader. It is cancelled again every ``CANCEL_AGAIN_S`` until it ends: a
        Redis read that times out just as it is cancelled can absorb the cancellation (redis-py
        under Python 3.11's ``asyncio.timeout``), and a reader left running would keep the
        event loop from ever closing."""
        reader = self.reader
        deadline = self.loop.time() + CLOSE_TIMEOUT_S
        while reader is not None and not reader.done():
            left = deadline - self.loop.time()
            if left <= 0:
                log.warning("%s: the reader did not stop in %g s", self.what, CLOSE_TIMEOUT_S)
                return
            reader.cancel()
            await asyncio.wait({reader}, timeout=min(CANCEL_AGAIN_S, left))
