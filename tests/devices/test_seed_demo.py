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


def test_seed_demo_creates_demo_users_once_with_their_roles(db, client):
    from django.contrib.auth import get_user_model

    first = StringIO()
    call_command("seed_demo", stdout=first)
    passwords = dict(
        line.split(" password: ") for line in first.getvalue().splitlines() if " password: " in line
    )
    assert set(passwords) == {"user admin (Admins)", "user operator (Operators)"}
    operator = get_user_model().objects.get(username="operator")
    assert list(operator.groups.values_list("name", flat=True)) == ["Operators"]
    assert get_user_model().objects.get(username="admin").is_superuser
    assert client.login(username="operator", password=passwords["user operator (Operators)"])
    second = StringIO()
    call_command("seed_demo", stdout=second)
    assert "password:" not in second.getvalue()
