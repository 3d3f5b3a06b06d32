"""``manage.py promote_model N [--site S]``."""

from django.core.management.base import BaseCommand, CommandError

from devices.models import Site
from registry.models import ModelVersion
from registry.services import PromotionError, promote


def find_site(value: str | None) -> Site | None:
    if value is None:
        return None
    site = Site.objects.filter(pk=int(value)).first() if value.isdigit() else None
    site = site or Site.objects.filter(name=value).first()
    if site is None:
        raise CommandError(f"no site {value!r} (an id or a name)")
    return site


class Command(BaseCommand):
    help = "Make a registered model version the active one (globally or for one site)."

    def add_arguments(self, parser):
        parser.add_argument("number", type=int)
        parser.add_argument("--site", default=None, help="site id or name (default: global)")

    def handle(self, *args, **options):
        version = ModelVersion.objects.filter(number=options["number"]).first()
        if version is None:
            raise CommandError(f"no version {options['number']}")
        site = find_site(options["site"])
        try:
            promote(version, site=site)
        except PromotionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"version {version.number} active {'at ' + site.name if site else ''}")
