"""The per-address and per-token limits of the device WebSocket, on a clock the test moves."""

from __future__ import annotations

import pytest

from devices.client.streamer import FATAL_CODES
from devices.protocol import CODES, ProtocolError
from live.connection_limits import MAX_KEYS, Buckets, ConnectionLimits, Limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(call, *args) -> str:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    return info.value.error


def test_open_sockets_per_address_are_capped_and_freed_on_close():
    limits = ConnectionLimits(Limits(address_connections=3), Clock())
    for _ in range(3):
        limits.opened("10.0.0.1")
    assert refused(limits.opened, "10.0.0.1") == "too_many_connections"
    limits.opened("10.0.0.2")  # another address is not affected
    limits.closed("10.0.0.1")
    limits.opened("10.0.0.1")
    for _ in range(4):
        limits.closed("10.0.0.1")
    assert "10.0.0.1" not in limits.open  # never negative, nothing left behind


def test_new_sockets_per_address_after_the_burst_at_the_rate():
    clock = Clock()
    limits = ConnectionLimits(Limits(address_connects_burst=5, address_connects_per_s=2), clock)
    for _ in range(5):
        limits.opened("a")
        limits.closed("a")
    assert refused(limits.opened, "a") == "too_many_connections"
    clock.now += 0.5  # one more token
    limits.opened("a")
    assert refused(limits.opened, "a") == "too_many_connections"


def test_a_token_that_reconnects_too_often_is_refused_and_others_are_not():
    clock = Clock()
    limits = ConnectionLimits(Limits(token_connects_burst=3, token_connects_per_s=0.1), clock)
    for _ in range(3):
        limits.hello("device-a")
    with pytest.raises(ProtocolError) as info:
        limits.hello("device-a")
    assert info.value.code == CODES["too_many_connections"] == 4040
    assert "retry in 10.0 s" in info.value.message
    limits.hello("device-b")
    clock.now += 10
    limits.hello("device-a")


def test_bytes_per_address_after_a_ten_second_burst():
    clock = Clock()
    limits = ConnectionLimits(Limits(address_bytes_per_s=1000), clock)
    limits.received("a", 10_000)  # the burst: 10 s of the rate
    assert refused(limits.received, "a", 1) == "too_fast"
    limits.received("b", 5_000)
    clock.now += 1
    limits.received("a", 1000)


def test_the_tables_stay_bounded_whatever_the_number_of_keys():
    clock = Clock()
    buckets = Buckets(capacity=2, rate=1)
    for i in range(3 * MAX_KEYS):
        assert buckets.take(f"addr-{i}", 1, clock.now) == 0.0
        clock.now += 0.001
        if i % 1000 == 0:
            clock.now += 5  # the older keys are full again: dropped at the next prune
    assert len(buckets.level) <= MAX_KEYS
    busy = Buckets(capacity=2, rate=0.001)  # nothing refills: only the oldest can go
    for i in range(3 * MAX_KEYS):
        busy.take(f"addr-{i}", 1, clock.now + i)
    assert len(busy.level) <= MAX_KEYS
    assert f"addr-{3 * MAX_KEYS - 1}" in busy.level and "addr-0" not in busy.level


def test_the_reference_client_retries_4040_and_gives_up_on_client_bugs():
    assert CODES["too_many_connections"] not in FATAL_CODES
    assert CODES["server_error"] not in FATAL_CODES
    assert {CODES["bad_token"], CODES["too_fast"], CODES["bad_hello"]} <= FATAL_CODES
