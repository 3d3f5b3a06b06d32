"""POST a message as signed JSON to a webhook destination."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .events import PAYLOAD_VERSION
from .sending import DeliveryError
from .signing import SIGNATURE_HEADER, signature_header

USER_AGENT = f"Eye-SCREAM-Webhook/{PAYLOAD_VERSION}"
MAX_ERROR_BODY = 300


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def post(url: str, secret: str, message: dict, timeout_s: float) -> int:
    """Send ``message``; the 2xx status code, or ``DeliveryError`` for anything else."""
    body = encode(message)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Eyescream-Event": message["type"],
        "X-Eyescream-Delivery": message["id"],
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        text = error.read(MAX_ERROR_BODY).decode("utf-8", "replace")
        raise DeliveryError(f"HTTP {error.code} {error.reason}: {text}", error.code) from None
    except (OSError, ValueError) as error:  # refused, unreachable, timed out, bad URL
        reason = getattr(error, "reason", None) or error
        raise DeliveryError(f"{type(reason).__name__}: {reason}") from None
