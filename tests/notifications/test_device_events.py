"""Device events: the offline sweep, a starting embedded server, an Admins-role user's admin."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.apps import grant_admin_permissions
from alerts.tasks import sweep_offline_devices
from devices.models import Device
from eyescream_site.recovery import recover_lost_streams

from .conftest import destination

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_offline_sweep_tells_the_sites_destinations(inline, device, receiver):
    hub = receiver()
    destination(device, "webhook", url=hub.url, events=["device.offline", "device.online"])
    Device.objects.filter(pk=device.pk).update(
        connection_state=Device.ONLINE, last_seen=timezone.now() - timedelta(hours=1)
    )
    assert sweep_offline_devices() == [device.pk]
    (message,) = hub.messages()
    assert message["type"] == "device.offline" and message["alert"] is None
    assert message["device"]["id"] == device.pk and message["device"]["state"] == "offline"
    assert message["site"]["name"] == "Central Station"


def test_an_embedded_server_start_marks_devices_offline_for_destinations_too(
    inline, device, receiver, settings
):
    settings.REDIS_URL = ""
    hub = receiver()
    destination(device, "webhook", url=hub.url, events=["device.offline"])
    Device.objects.filter(pk=device.pk).update(connection_state=Device.ONLINE)
    recover_lost_streams()
    assert [(m["type"], m["device"]["name"]) for m in hub.messages()] == [
        ("device.offline", "mic-3a")
    ]


def test_the_admins_role_manages_destinations_in_the_admin(client, device):
    admins = Group.objects.create(name="Admins")
    grant_admin_permissions()
    user = get_user_model().objects.create_user("ada")
    user.groups.add(admins)
    client.force_login(user)
    assert client.get("/admin/notifications/destination/add/").status_code == 200
    assert client.get("/admin/notifications/escalationpolicy/add/").status_code == 200
    assert client.get("/admin/notifications/delivery/").status_code == 200
    assert client.get("/admin/notifications/delivery/add/").status_code == 403
