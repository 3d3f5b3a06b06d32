"""The audit trail: ``record`` writes one ``AuditEvent`` for a change an actor made.

Services call it inside the transaction of the change they audit, so a change and its event are
stored together or not at all. ``Actor.of_request`` names the logged-in user and the client
address; ``Actor.device`` a device by id and name; ``SYSTEM`` the server itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from .models import AuditEvent

MAX_NAME = 200


def _address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


@dataclass(frozen=True)
class Actor:
    kind: str
    user: Any = None
    device_id: int | None = None
    name: str = ""
    address: str | None = None

    @classmethod
    def of_request(cls, request) -> Actor:
        user = getattr(request, "user", None)
        address = _address(request.META.get("REMOTE_ADDR"))
        if user is None or not user.is_authenticated:
            return cls(AuditEvent.SYSTEM, name="anonymous", address=address)
        return cls(AuditEvent.USER, user=user, name=user.get_username(), address=address)

    @classmethod
    def of_user(cls, user, address: str | None = None) -> Actor:
        return cls(AuditEvent.USER, user=user, name=user.get_username(), address=_address(address))

    @classmethod
    def device(cls, device_id: int, name: str, address: str | None = None) -> Actor:
        return cls(AuditEvent.DEVICE, device_id=device_id, name=name, address=_address(address))


SYSTEM = Actor(AuditEvent.SYSTEM, name="system")


def object_type(obj) -> str:
    return obj._meta.label_lower


def record(
    actor: Actor | None,
    action: str,
    obj=None,
    *,
    details: dict | None = None,
    type_: str = "",
    object_id: Any = None,
    name: str = "",
) -> AuditEvent:
    """Store that ``actor`` did ``action`` to ``obj`` (or to ``type_``/``object_id``/``name``)."""
    actor = actor or SYSTEM
    if obj is not None:
        type_ = type_ or object_type(obj)
        object_id = obj.pk if object_id is None else object_id
        name = name or str(obj)
    return AuditEvent.objects.create(
        actor_kind=actor.kind,
        actor_user=actor.user if actor.user is not None and actor.user.pk else None,
        actor_device_id=actor.device_id,
        actor_name=actor.name[:MAX_NAME],
        action=action,
        object_type=type_,
        object_id="" if object_id is None else str(object_id),
        object_name=name[:MAX_NAME],
        details=details or {},
        source_ip=actor.address,
    )
