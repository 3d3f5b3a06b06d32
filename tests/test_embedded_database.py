"""Embedded mode's SQLite: a second writer waits for the first one's lock, never fails."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from devices.models import Site


@pytest.mark.django_db(transaction=True)
def test_a_writer_waits_for_another_threads_write_lock():
    if connection.vendor != "sqlite":
        pytest.fail("this test is about the embedded mode's SQLite database")
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock():
        try:
            with transaction.atomic():
                Site.objects.create(name="first", latitude=0, longitude=0)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert holding.wait(10)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with transaction.atomic():  # waits for the lock (0.3 s), does not raise "locked"
        Site.objects.create(name="second", latitude=0, longitude=0)
    waited = time.monotonic() - started
    holder.join(10)
    assert waited >= 0.2
    assert set(Site.objects.values_list("name", flat=True)) == {"first", "second"}
