"""``manage.py register_model DIR [--expect-checksum X] [--description ...] [--parent N]``."""

from django.core.management.base import BaseCommand, CommandError

from registry.models import ModelVersion
from registry.services import RegistrationError, register_version


class Command(BaseCommand):
    help = "Register a model artifact folder as a new version (not made active)."

    def add_arguments(self, parser):
        parser.add_argument("folder", help="artifact folder: config.json and weights.pt")
        parser.add_argument("--expect-checksum", default=None, help="sha256 the files must have")
        parser.add_argument("--description", default="", help="what it was trained on")
        parser.add_argument("--parent", type=int, default=None, help="version it started from")

    def handle(self, *args, **options):
        parent = None
        if options["parent"] is not None:
            parent = ModelVersion.objects.filter(number=options["parent"]).first()
            if parent is None:
                raise CommandError(f"no version {options['parent']}")
        try:
            version = register_version(
                options["folder"],
                parent=parent,
                data_description=options["description"],
                expected_checksum=options["expect_checksum"],
            )
        except RegistrationError as exc:
            raise CommandError(f"not registered: {exc}") from exc
        self.stdout.write(
            f"registered version {version.number} ({version.digest}) at {version.path}\n"
            f"checksum {version.checksum}\n"
            f"promote it with: manage.py promote_model {version.number}"
        )
