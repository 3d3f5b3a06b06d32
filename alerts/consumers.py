"""The dashboard WebSocket ``/ws/alerts/``: live alerts and device states for operators and
admins.

Joins the channel-layer group ``alerts`` and forwards what is broadcast there after commit:
``alert.created``, ``alert.updated`` (``{"type", "alert"}``), ``device.updated``
(``{"type", "device"}``), ``device.removed`` (``{"type", "device_id"}``) and ``devices.offline``
(``{"type", "device_ids"}``), each with its sequence number ``seq`` (``alerts.sequence``) and,
where superseded updates of the same alert were left out, their numbers in ``also_seq``.

A page sends ``{"type": "sync", "since_id", "known"}`` on every connect and when it sees a gap
in the numbers; it gets ``{"type": "snapshot", "seq", ...}`` (``live_state.snapshot``): the
state as of number ``seq``, so it applies only the broadcasts numbered after it.
``{"type": "ping"}`` gets ``{"type": "pong"}``.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.permissions import is_operator

from .broadcasting import latest_updates
from .live_state import MAX_KNOWN, snapshot
from .sequence import current
from .services import ALERTS_GROUP

UNAUTHENTICATED = 4401
FORBIDDEN = 4403  # logged in, but neither in Operators nor in Admins
BROADCASTS = {
    "alert.created": "alert_created",
    "alert.updated": "alert_updated",
    "devices.offline": "devices_offline",
    "device.updated": "forward",
    "device.removed": "forward",
}
FORWARDED = ("alert", "device", "device_id", "device_ids", "seq", "also_seq")


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accept refuses the handshake (HTTP 403 to the client).
            await self.close(code=UNAUTHENTICATED)
            return
        if not await database_sync_to_async(is_operator)(user):
            await self.close(code=FORBIDDEN)
            return
        self.joined = True
        await self.channel_layer.group_add(ALERTS_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(ALERTS_GROUP, self.channel_name)

    async def dispatch(self, message) -> None:
        """Broadcasts skip Channels' per-message ``close_old_connections`` thread hop.

        Forwarding them never touches the database, and the hop, through the process's one
        shared database thread, made a burst of alerts wait behind each other (a few dozen a
        second got through while a hundred streams were being ingested).
        """
        if message["type"] not in BROADCASTS:
            await super().dispatch(message)
            return
        for item in latest_updates([message, *self._waiting()]):
            if item["type"] in BROADCASTS:
                await getattr(self, BROADCASTS[item["type"]])(item)
            else:
                await super().dispatch(item)

    def _waiting(self) -> list[dict]:
        """Broadcasts already received for this dashboard, where the layer can hand them over
        at once (``BulkRedisChannelLayer``): a burst of alerts goes out in one turn of the event
        loop instead of a task and several loop turns each."""
        take = getattr(self.channel_layer, "receive_waiting", None)
        return take(self.channel_name) if take is not None else []

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        elif content.get("type") == "sync":
            await self.send_snapshot(content)

    async def send_snapshot(self, request: dict) -> None:
        """The number first, then the database: whatever is numbered up to it is in the rows.

        Broadcasts that arrive meanwhile wait for this handler, so they follow the snapshot.
        """
        since_id = request.get("since_id")
        known = request.get("known")
        since_id = since_id if isinstance(since_id, int) and since_id > 0 else 0
        if not isinstance(known, list):
            known = []
        known = [k for k in known[:MAX_KNOWN] if isinstance(k, int) and not isinstance(k, bool)]
        seq = await current(self.channel_layer, ALERTS_GROUP)
        state = await database_sync_to_async(snapshot)(since_id, known)
        await self.send_json({"type": "snapshot", "seq": seq, **state})

    async def forward(self, event) -> None:
        await self.send_json({k: v for k, v in event.items() if k == "type" or k in FORWARDED})

    alert_created = alert_updated = devices_offline = forward
