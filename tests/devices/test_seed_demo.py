from io import StringIO

from django.core.management import call_command

from devices.models import Device, Site


def test_seed_demo_is_idempotent_and_prints_new_tokens_once(db):
    first = StringIO()
    call_command("seed_demo", stdout=first)
    assert first.getvalue().count("token: esd_") == 3
    site = Site.objects.get()
    assert site.locations.count() == 3
    assert all(d.token_hash and d.location.latitude for d in Device.objects.all())
    second = StringIO()
    call_command("seed_demo", stdout=second)
    assert "esd_" not in second.getvalue()
    assert Device.objects.count() == 3 and Site.objects.count() == 1
