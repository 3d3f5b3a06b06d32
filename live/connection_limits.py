"""Connection and byte-rate limits of the device WebSocket, per client address and per token.

Kept in each daphne process's memory (a proxy spreads devices over processes; each process
enforces the limits on what reaches it):

- per address: at most ``address_connections`` open sockets, and new sockets at most
  ``address_connects_per_s`` a second after a burst of ``address_connects_burst``;
- per token (a device, or a wrong token tried again and again): hellos at most
  ``token_connects_per_s`` a second after a burst of ``token_connects_burst`` (a reconnect
  storm cannot reset the per-connection rate guard or load the database);
- per address: audio bytes of all its streams together at most ``address_bytes_per_s`` a
  second, after a burst of ``BYTE_BURST_S`` seconds of it.

A refused socket gets ``too_many_connections`` (4040: retry after a back-off); an address over
its byte rate ``too_fast`` (4033). Buckets of idle keys are dropped once there are many, so the
tables stay bounded whatever the number of addresses or tokens seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from devices.protocol import ProtocolError

BYTE_BURST_S = 10.0
MAX_KEYS = 10_000  # buckets kept before full (idle) ones are dropped


class Buckets:
    """Token buckets by key: ``capacity`` tokens, refilled at ``rate`` a second."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = float(capacity), float(rate)
        self.level: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _now_level(self, key: str, now: float) -> float:
        tokens, at = self.level.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def take(self, key: str, amount: float, now: float) -> float:
        """Take ``amount``; 0.0 if it was there, else the seconds until it would be."""
        tokens = self._now_level(key, now)
        if tokens < amount:
            self.level[key] = (tokens, now)
            return (amount - tokens) / self.rate if self.rate > 0 else float("inf")
        self.level[key] = (tokens - amount, now)
        if len(self.level) > MAX_KEYS:
            self.prune(now)
        return 0.0

    def prune(self, now: float) -> None:
        """Drop the full buckets; if still over half of ``MAX_KEYS``, the longest untouched
        (amortised: the next prune is ``MAX_KEYS / 2`` new keys away)."""
        full = [k for k in self.level if self._now_level(k, now) >= self.capacity]
        for key in full:
            del self.level[key]
        excess = len(self.level) - MAX_KEYS // 2
        if excess > 0:
            oldest = sorted(self.level, key=lambda k: self.level[k][1])[:excess]
            for key in oldest:
                del self.level[key]


@dataclass(frozen=True)
class Limits:
    address_connections: int = 1000
    address_connects_burst: int = 1000
    address_connects_per_s: float = 50.0
    token_connects_burst: int = 60
    token_connects_per_s: float = 1.0
    address_bytes_per_s: float = 64 * 1024 * 1024

    @classmethod
    def from_settings(cls) -> Limits:
        names = {f: f"EYESCREAM_WS_{f.upper()}" for f in cls.__dataclass_fields__}
        values = {
            f: getattr(settings, name) for f, name in names.items() if hasattr(settings, name)
        }
        return cls(**values)


class ConnectionLimits:
    def __init__(self, limits: Limits, clock=time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.open: dict[str, int] = {}
        self.connects = Buckets(limits.address_connects_burst, limits.address_connects_per_s)
        self.hellos = Buckets(limits.token_connects_burst, limits.token_connects_per_s)
        rate = limits.address_bytes_per_s
        self.bytes = Buckets(rate * BYTE_BURST_S, rate)

    def opened(self, address: str) -> None:
        """A socket from ``address`` opened: count it, or ``ProtocolError`` (4040) if over."""
        if self.open.get(address, 0) >= self.limits.address_connections:
            raise ProtocolError(
                "too_many_connections",
                f"{self.limits.address_connections} connections from this address are open",
            )
        wait = self.connects.take(address, 1, self.clock())
        if wait:
            raise ProtocolError(
                "too_many_connections",
                f"connecting too often from this address; retry in {wait:.1f} s",
            )
        self.open[address] = self.open.get(address, 0) + 1

    def closed(self, address: str) -> None:
        left = self.open.get(address, 0) - 1
        if left > 0:
            self.open[address] = left
        else:
            self.open.pop(address, None)

    def hello(self, token_key: str) -> None:
        """A hello with this token (its hash): ``ProtocolError`` (4040) if it comes too often."""
        wait = self.hellos.take(token_key, 1, self.clock())
        if wait:
            raise ProtocolError(
                "too_many_connections",
                f"this device connects too often; retry in {wait:.1f} s",
            )

    def received(self, address: str, size: int) -> None:
        """Audio bytes from ``address``: ``ProtocolError`` (4033) past the address's rate."""
        if self.bytes.take(address, size, self.clock()):
            raise ProtocolError(
                "too_fast",
                f"the streams of this address send more than "
                f"{self.limits.address_bytes_per_s:.0f} bytes a second",
            )


_limits: ConnectionLimits | None = None


def limits() -> ConnectionLimits:
    """This process's limits (made from the settings at the first connection)."""
    global _limits
    if _limits is None:
        _limits = ConnectionLimits(Limits.from_settings())
    return _limits
