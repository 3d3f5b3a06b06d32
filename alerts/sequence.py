"""Sequence numbers of broadcasts: every message to a group gets the next number of its group.

A dashboard starts from a snapshot taken at number S (``current`` read before the database) and
applies the broadcasts numbered after S; a number it never receives (a message the channel layer
dropped, a broadcast that failed) shows as a gap, and the page asks for a new snapshot.

The counter lives where every sender and every dashboard consumer can reach it: in Redis with a
Redis channel layer (``INCRBY`` on ``<prefix>:seq:<group>``, one round trip per batch), in this
process otherwise (the in-memory layer of the embedded mode, where all senders share the
process). Numbers are taken after the commit of what they announce, so a snapshot at S already
holds everything numbered up to S. Broadcasts from several processes may arrive slightly out of
order; pages wait a moment before they call a missing number a gap. A counter that starts again
(a Redis flushed or restarted) gives small numbers again, which pages take as a restart and
resync (``alerts/static/alerts/live.js``).
"""

from __future__ import annotations

import weakref

_LOCAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis(layer, group: str):
    """The Redis client and key of ``group``'s counter, or None for a layer without Redis."""
    connection = getattr(layer, "connection", None)
    hashing = getattr(layer, "consistent_hash", None)
    if connection is None or hashing is None:
        return None
    return connection(hashing(group)), f"{layer.prefix}:seq:{group}"


def _local(layer) -> dict[str, int]:
    try:
        return _LOCAL.setdefault(layer, {})
    except TypeError:  # a layer that cannot be weakly referenced
        return {}


async def take(layer, group: str, count: int = 1) -> int:
    """Reserve ``count`` numbers of ``group``; returns the last (they are last-count+1..last)."""
    redis = _redis(layer, group)
    if redis is None:
        numbers = _local(layer)
        numbers[group] = numbers.get(group, 0) + count
        return numbers[group]
    client, key = redis
    return int(await client.incrby(key, count))


async def current(layer, group: str) -> int:
    """The last number given to ``group`` so far (0 before any)."""
    redis = _redis(layer, group)
    if redis is None:
        return _local(layer).get(group, 0)
    client, key = redis
    return int(await client.get(key) or 0)


async def numbered(layer, group: str, messages: list[dict], skip: int = 0) -> list[dict]:
    """Copies of ``messages`` with ``seq``: consecutive numbers of ``group``, in order, after
    ``skip`` numbers left unused (for messages dropped unsent: the pages see a gap)."""
    if not messages:
        return []
    last = await take(layer, group, skip + len(messages))
    first = last - len(messages) + 1
    return [{**message, "seq": first + i} for i, message in enumerate(messages)]
