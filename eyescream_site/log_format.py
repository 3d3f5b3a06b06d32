"""JSON-lines log records (``EYESCREAM_LOG_FORMAT=json``).

One object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``process``,
and ``device_id``, ``site_id``, ``alert_id`` where the call gave them
(``log.info(..., extra={"device_id": ...})``), plus ``exception`` with the traceback. What a line
never holds is decided where the message is written: no token, password or audio is ever put
into a log call; as a second guard, anything shaped like a device or API token is masked.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

IDS = ("device_id", "site_id", "alert_id", "location_id", "user_id")
# Device tokens (devices/tokens.py) and DRF tokens: long runs of token characters.
TOKEN_SHAPED = re.compile(r"\b(esd_[A-Za-z0-9_-]{16,}|[A-Fa-f0-9]{40})\b")


def mask(text: str) -> str:
    return TOKEN_SHAPED.sub("[masked]", text)


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "process": record.process,
        }
        for name in IDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, default=str)
