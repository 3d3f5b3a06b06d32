"""Batched health writes: counters add up, values are set, one statement for all devices."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device, Location, Site
from live.health import HealthDelta, write_deltas


def delta(device, rejected, windows, level, clipping, position, frames=5, **kw):
    """A write of the connection that owns ``device``'s stream (unless ``kw`` says otherwise)."""
    fields = {"samples": 16000, "rate": 16000, "connection": device.connection, "stream_id": ""}
    return HealthDelta(
        device.pk, frames, rejected, windows, level, clipping, position, **{**fields, **kw}
    )


def test_write_deltas_increments_counters_and_sets_levels(db):
    location = Location.objects.create(site=Site.objects.create(name="S"), name="L")
    devices = [Device.objects.create(location=location, name=f"d{i}") for i in range(3)]
    now = timezone.now()
    for round_ in range(2):
        deltas = [
            delta(d, round_, 10, -20.5 - i, bool(i), 16000 * (round_ + 1))
            for i, d in enumerate(devices)
        ]
        with CaptureQueriesContext(connection) as queries:
            write_deltas(deltas, now)
        assert sum("UPDATE" in q["sql"] for q in queries.captured_queries) <= 1 + len(devices)
    for i, device in enumerate(devices):
        device.refresh_from_db()
        assert (device.frames_received, device.samples_received) == (10, 32000)
        assert device.seconds_received == 2.0 and device.frames_rejected == 1
        assert device.windows == 20 and device.stream_samples == 32000
        assert device.level_dbfs == -20.5 - i and device.clipping == bool(i)
        assert device.last_seen == now
        assert device.connection_state == Device.ONLINE  # devices start offline


def test_a_flushing_stream_is_back_online_after_the_offline_sweep(db):
    location = Location.objects.create(site=Site.objects.create(name="S"), name="L")
    device = Device.objects.create(location=location, name="d", connection_state=Device.OFFLINE)
    write_deltas([delta(device, 0, 0, -30.0, False, 160)], timezone.now())
    device.refresh_from_db()
    assert device.connection_state == Device.ONLINE


def streaming(device, connection, stream_id="", position=0):
    """What a hello does to the row: this connection owns the stream from ``position``."""
    Device.objects.filter(pk=device.pk).update(
        connection=connection, stream_id=stream_id, stream_samples=position
    )
    device.refresh_from_db()


def test_a_takeover_with_the_same_stream_id_counts_re_sent_audio_once(db):
    """A streams 40,000 samples (acked 33,600); B says hello with A's stream id, resumes at
    33,600, and re-sends 6,400 before 16,000 new ones: 56,000 unique samples in all."""
    location = Location.objects.create(site=Site.objects.create(name="S"), name="L")
    device = Device.objects.create(location=location, name="d")
    streaming(device, "A", "sid")
    write_deltas(
        [delta(device, 0, 0, -30, False, 33_600, samples=33_600, connection="A", stream_id="sid")],
        timezone.now(),
    )
    streaming(device, "B", "sid", position=33_600)  # B's hello, before A's last write
    write_deltas(
        [delta(device, 0, 0, -30, False, 40_000, samples=6_400, connection="A", stream_id="sid")],
        timezone.now(),
    )
    write_deltas(
        [
            delta(
                device,
                0,
                0,
                -30,
                False,
                33_600 + 22_400,
                samples=22_400,
                connection="B",
                stream_id="sid",
            )
        ],
        timezone.now(),
    )
    device.refresh_from_db()
    assert device.samples_received == 56_000
    assert device.seconds_received == 56_000 / 16_000
    assert device.stream_samples == 56_000


def test_a_stream_replaced_by_another_stream_adds_only_what_it_received(db):
    location = Location.objects.create(site=Site.objects.create(name="S"), name="L")
    device = Device.objects.create(location=location, name="d")
    streaming(device, "A")
    write_deltas([delta(device, 0, 0, -30, False, 16_000, connection="A")], timezone.now())
    streaming(device, "B")  # a new stream (no stream id): positions start again at 0
    write_deltas(
        [delta(device, 0, 0, -30, False, 20_000, samples=4_000, connection="A")], timezone.now()
    )
    write_deltas(
        [delta(device, 0, 0, -30, False, 8_000, samples=8_000, connection="B")], timezone.now()
    )
    device.refresh_from_db()
    assert device.samples_received == 16_000 + 4_000 + 8_000
    assert device.stream_samples == 8_000  # B's position, untouched by A's last write


def test_a_non_finite_level_is_stored_as_none_and_an_old_one_reads_as_none(db):
    location = Location.objects.create(site=Site.objects.create(name="S"), name="L")
    device = Device.objects.create(location=location, name="d")
    write_deltas([delta(device, 0, 0, float("inf"), True, 160)], timezone.now())
    device.refresh_from_db()
    assert device.level_dbfs is None
    with connection.cursor() as cursor:  # a row written before levels were checked
        cursor.execute("UPDATE devices_device SET level_dbfs = %s", [float("inf")])
    assert Device.objects.get(pk=device.pk).level_dbfs is None
