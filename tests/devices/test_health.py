"""Batched health writes: counters add up, values are set, one statement for all devices."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.health import HealthDelta, write_deltas
from devices.models import Device, Location, Site


def test_write_deltas_increments_counters_and_sets_levels(db):
    location = Location.objects.create(site=Site.objects.create(name="S"), name="L")
    devices = [Device.objects.create(location=location, name=f"d{i}") for i in range(3)]
    now = timezone.now()
    for round_ in range(2):
        deltas = [
            HealthDelta(d.pk, 5, 16000, 1.0, round_, 10, -20.5 - i, bool(i), 16000 * (round_ + 1))
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
    write_deltas([HealthDelta(device.pk, 1, 160, 0.01, 0, 0, -30.0, False, 160)], timezone.now())
    device.refresh_from_db()
    assert device.connection_state == Device.ONLINE
