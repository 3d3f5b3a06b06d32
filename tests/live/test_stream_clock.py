"""Alert times: the device's capture clock when it is believable, arrival times otherwise."""

from datetime import UTC, datetime

import pytest

from devices.protocol import ProtocolError, capture_zero, parse_hello
from live.stream_clock import ARRIVAL, DEVICE, StreamClock


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ts(clock: StreamClock, stream_s: float) -> float:
    return clock.wall(stream_s).timestamp()


def test_re_sent_audio_gets_its_capture_time_from_the_device():
    """A scream captured 20 s into a 35 s outage: re-sent after the reconnect, it is stamped
    when it happened, not when it arrived."""
    outage_start = 1_000_000.0
    now = Clock(outage_start + 35.0)  # the reconnect
    clock = StreamClock(device_zero=outage_start - 10.0, clock=now)  # backlog from 10 s before
    clock.observe(45.0)  # the whole backlog arrives at once
    assert clock.source == DEVICE
    assert ts(clock, 30.0) == pytest.approx(outage_start + 20.0)


def test_without_a_device_clock_times_never_run_ahead_of_arrival():
    now = Clock(2_000_000.0)
    clock = StreamClock(clock=now)
    clock.observe(0.2)  # first frame
    now.now += 1.0
    clock.observe(45.0)  # 44.8 s of backlog arrive in one second
    assert clock.source == ARRIVAL
    assert ts(clock, 45.0) == pytest.approx(now.now)  # the newest audio: now
    assert ts(clock, 25.0) == pytest.approx(now.now - 20.0)  # older audio: earlier
    assert clock.wall(60.0) <= datetime.fromtimestamp(now.now, tz=UTC)  # never in the future


@pytest.mark.parametrize("skew_s", [-3 * 3600.0, 60.0])
def test_an_unbelievable_device_clock_falls_back_to_arrival(skew_s):
    now = Clock(3_000_000.0)
    clock = StreamClock(device_zero=now.now + skew_s, clock=now)
    clock.observe(1.0)
    assert clock.source == ARRIVAL
    assert ts(clock, 1.0) == pytest.approx(now.now)


def test_capture_zero_is_the_time_of_the_connections_first_sample():
    hello = parse_hello(
        '{"type": "hello", "token": "t", "sample_rate": 16000, "encoding": "pcm_s16le",'
        ' "capture_time": 1000.0, "capture_sample": 32000}'
    )
    assert capture_zero(hello, resume_at=48_000) == pytest.approx(1001.0)
    bare = parse_hello(
        '{"type": "hello", "token": "t", "sample_rate": 16000, "encoding": "pcm_s16le"}'
    )
    assert capture_zero(bare, resume_at=0) is None


@pytest.mark.parametrize(
    "extra",
    [
        '"capture_time": "now"',
        '"capture_time": -1',
        '"capture_time": 1e400',
        '"capture_time": 5, "capture_sample": -3',
        '"capture_time": true',
    ],
)
def test_a_malformed_capture_time_is_a_bad_hello(extra):
    with pytest.raises(ProtocolError) as caught:
        parse_hello(
            '{"type": "hello", "token": "t", "sample_rate": 16000, "encoding": "pcm_s16le", '
            + extra
            + "}"
        )
    assert caught.value.error == "bad_hello"
