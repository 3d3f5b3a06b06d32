"""Oversized WebSocket messages get the protocol's ``frame_too_large`` (4032), not a dropped socket.

The device protocol promises one answer to a frame that is too large: an error message and close
code 4032 (``devices.protocol``). The consumer checks each frame against its hello's limit, but
daphne refuses a message over its own limit (``--websocket_max_message_size``, 1 MiB by default)
before any consumer sees it, and by default drops the TCP connection: the client saw 1006, which
the docs tell it to retry. Autobahn, under daphne, calls ``_max_message_size_exceeded`` as soon
as a frame's header announces too many bytes; here that answers with the protocol's error and
close code and discards the rest of the frame instead of reading it into memory.
"""

from __future__ import annotations

import json

from daphne.ws_protocol import WebSocketProtocol

from devices.protocol import CODES, error_message


def answer_frame_too_large(protocol, size: int, limit: int, reason: str) -> None:
    """Autobahn's hook for a message over the server's limit: 4032, then close."""
    if protocol.state != protocol.STATE_OPEN:  # closing already: nothing more to say
        protocol.dropConnection(abort=True)
        return
    text = f"a message of {size} bytes exceeds the server's limit of {limit} bytes"
    protocol.sendMessage(json.dumps(error_message("frame_too_large", text)).encode(), False)
    protocol.failedByMe = True  # the rest of the frame is discarded, not buffered
    protocol.sendCloseFrame(
        code=CODES["frame_too_large"], reasonUtf8=b"frame_too_large", isReply=False
    )


def install() -> None:
    """Answer daphne's oversized messages with 4032 (call before the server starts)."""
    WebSocketProtocol._max_message_size_exceeded = answer_frame_too_large
