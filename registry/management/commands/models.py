"""``manage.py models``: the registered versions and which is active where."""

from django.core.management.base import BaseCommand

from devices.models import Site
from registry.models import ModelVersion
from registry.services import active_choices


class Command(BaseCommand):
    help = "List the registered model versions and the active ones."

    def handle(self, *args, **options):
        choices = active_choices()
        sites = dict(Site.objects.values_list("pk", "name"))
        where: dict[int, list[str]] = {}
        for scope, version in choices.items():
            where.setdefault(version.pk, []).append(
                "global" if scope is None else f"site {sites.get(scope, scope)}"
            )
        self.stdout.write(f"{'version':>7}  {'digest':12}  {'source':10}  {'created':16}  active")
        for version in ModelVersion.objects.order_by("number"):
            self.stdout.write(
                f"{version.number:>7}  {version.digest:12}  {version.source:10}"
                f"  {version.created:%Y-%m-%d %H:%M}  {', '.join(where.get(version.pk, []))}"
            )
