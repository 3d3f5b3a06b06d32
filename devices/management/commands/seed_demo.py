"""``manage.py seed_demo``: a demo site with locations and devices (idempotent).

Prints the token of each device it creates, once; existing devices keep their tokens (rotate
them in the admin if lost).
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from devices import services
from devices.models import Device, Location, Site

DEMO_SITE = {
    "name": "Demo: Hongdae alleys",
    "address": "Wausan-ro, Mapo-gu, Seoul",
    "latitude": 37.5563,
    "longitude": 126.9236,
}
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
                token = services.issue_token(device)
                self.stdout.write(f"device {device_name} (id {device.pk}) token: {token}")
            else:
                self.stdout.write(f"device {device_name} (id {device.pk}) exists; token unchanged")
        self.stdout.write(
            "Stream with: python -m devices.client --token TOKEN --file FILE.wav --loop"
            " (or open /device/ in a browser)"
        )
