"""The dashboard WebSocket ``/ws/alerts/``: live alerts for operators and admins.

Joins the channel-layer group ``alerts`` and forwards what ``alerts.services`` broadcasts
after commit: ``alert.created``, ``alert.updated`` (``{"type", "alert"}``) and
``devices.offline`` (``{"type", "device_ids"}``).
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.permissions import is_operator

from .broadcasting import latest_updates
from .services import ALERTS_GROUP

UNAUTHENTICATED = 4401
FORBIDDEN = 4403  # logged in, but neither in Operators nor in Admins
BROADCASTS = {
    "alert.created": "alert_created",
    "alert.updated": "alert_updated",
    "devices.offline": "devices_offline",
}


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
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def alert_created(self, event) -> None:
        await self.send_json({"type": "alert.created", "alert": event["alert"]})

    async def alert_updated(self, event) -> None:
        await self.send_json({"type": "alert.updated", "alert": event["alert"]})

    async def devices_offline(self, event) -> None:
        await self.send_json({"type": "devices.offline", "device_ids": event["device_ids"]})
