"""``manage.py rollback_model [--site S]``."""

from django.core.management.base import BaseCommand, CommandError

from registry.services import PromotionError, rollback

from .promote_model import find_site


class Command(BaseCommand):
    help = "Go back to the model version active before the current one (globally or per site)."

    def add_arguments(self, parser):
        parser.add_argument("--site", default=None, help="site id or name (default: global)")

    def handle(self, *args, **options):
        site = find_site(options["site"])
        try:
            version = rollback(site=site)
        except PromotionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"version {version.number} active {'at ' + site.name if site else ''}")
