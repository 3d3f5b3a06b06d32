"""``manage.py seed_demo``: a demo site with locations, devices and users (idempotent).

Prints the token of each device it creates and the password of each user it creates, once;
existing devices and users are left as they are (rotate a token in the admin, reset a password
with ``manage.py changepassword``).
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from devices import services
from devices.models import Device, Location, Site

DEMO_SITE = {
    "name": "Demo: Hongdae alleys",
    "address": "Wausan-ro, Mapo-gu, Seoul",
    "latitude": 37.5563,
    "longitude": 126.9236,
    "time_zone": "Asia/Seoul",
}
DEMO_USERS = [("admin", "Admins", True), ("operator", "Operators", False)]
DEMO_LOCATIONS = [
    ("Alley 3 street light", 37.5569, 126.9228, "alley-3-mic"),
    ("Station restroom entrance", 37.5575, 126.9245, "restroom-mic"),
    ("Parking lot B", 37.5556, 126.9241, "parking-b-mic"),
]


class Command(BaseCommand):
    help = "Create a demo site with locations and devices; print each NEW device's token once."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        fields = {k: v for k, v in DEMO_SITE.items() if k != "name"}
        site, _ = Site.objects.get_or_create(name=DEMO_SITE["name"], defaults=fields)
        for location_name, lat, lon, device_name in DEMO_LOCATIONS:
            location, _ = Location.objects.get_or_create(
                site=site, name=location_name, defaults={"latitude": lat, "longitude": lon}
            )
            device, created = Device.objects.get_or_create(location=location, name=device_name)
            if created:
                token = services.issue_token(device, action="create")
                self.stdout.write(f"device {device_name} (id {device.pk}) token: {token}")
            else:
                self.stdout.write(f"device {device_name} (id {device.pk}) exists; token unchanged")
        for username, group, is_superuser in DEMO_USERS:
            self._user(username, group, is_superuser)
        self.stdout.write(
            "Stream with: python -m devices.client --token TOKEN --file FILE.wav --loop"
            " (or open /device/ in a browser)"
        )

    def _user(self, username: str, group: str, is_superuser: bool) -> None:
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"user {username} exists; password unchanged")
            return
        password = secrets.token_urlsafe(12)
        if is_superuser:
            user = users.objects.create_superuser(username, password=password)
        else:
            user = users.objects.create_user(username, password=password)
        user.groups.add(Group.objects.get(name=group))
        self.stdout.write(f"user {username} ({group}) password: {password}")
