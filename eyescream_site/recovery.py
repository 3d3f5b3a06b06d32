"""What a server starting does about streams that died with the previous one.

A killed process leaves its devices marked online and its open alerts open. In the embedded mode
every stream lived in the one server process, so a starting server marks every device offline;
in either mode it then closes the open alerts whose stream is gone
(``alerts.services.close_lost_alerts``: ended at their last update, reason ``stream_lost``). In
the scaled mode, where other daphne processes keep their streams, the Celery beat's device sweep
closes the rest once a dead process's devices go stale or reconnect elsewhere.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError

from alerts.services import close_lost_alerts
from devices.models import Device
from devices.services import mark_all_offline
from devices.signals import connection_changed

log = logging.getLogger(__name__)


def recover_lost_streams() -> list[int]:
    """Run once at server start; returns the ids of the alerts it closed."""
    try:
        if not settings.REDIS_URL:
            for device_id in mark_all_offline():  # destinations learn it too (availability)
                connection_changed(device_id, Device.OFFLINE)
        return close_lost_alerts()
    except DatabaseError as exc:  # not migrated yet: nothing to recover
        log.warning("lost streams not recovered at start: %s", exc)
        return []
