"""``manage.py import_webhook_setting [--url URL] [--site NAME ...]``: the removed global
``EYESCREAM_ALERT_WEBHOOK_URL`` as a signed webhook destination of each site (idempotent);
prints the signing secret once."""

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devices.models import Site
from notifications.migration_path import OLD_SETTING, import_webhook_setting


class Command(BaseCommand):
    help = f"Make {OLD_SETTING} a webhook destination (alert opened, ended) of each site."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default=os.environ.get(OLD_SETTING, ""))
        parser.add_argument("--site", action="append", help="only this site (repeatable)")
        parser.add_argument("--secret", default="", help="the signing secret (default: new)")

    @transaction.atomic
    def handle(self, *args, url: str, site, secret: str, **options) -> None:
        if not url:
            raise CommandError(f"no URL: set {OLD_SETTING} or pass --url")
        sites = Site.objects.all()
        if site:
            sites = sites.filter(name__in=site)
            missing = sorted(set(site) - set(sites.values_list("name", flat=True)))
            if missing:
                raise CommandError(f"no site named {', '.join(missing)}")
        try:
            made = import_webhook_setting(url, list(sites), secret)
        except Exception as error:
            raise CommandError(str(error)) from None
        for destination in made:
            self.stdout.write(f"{destination.site.name}: webhook destination {destination.pk}")
        if made:
            self.stdout.write(f"signing secret (shown once): {made[0].secret}")
        else:
            self.stdout.write("every site has it already")
