"""``manage.py export_feedback``: the reviewed alerts as a labelled pack that ``train`` reads."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from feedback.export import export_feedback, parse_since


class Command(BaseCommand):
    help = (
        "Write every reviewed alert's snippet as FLAC with an Audacity label file (confirmed:"
        " '1' over the incident; dismissed: its reason over the snippet) and a manifest.csv:"
        " a pack that 'manage.py train --data' reads."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="folder to write the pack into")
        parser.add_argument("--site", help="only the alerts of this site (its name)")
        parser.add_argument("--since", help="only verdicts given at or after this ISO date/time")

    def handle(self, *args, **opts):
        try:
            since = parse_since(opts.get("since"))
        except ValueError as exc:
            raise CommandError(f"--{exc}") from exc
        result = export_feedback(opts["out"], opts.get("site"), since)
        for alert_id, why in result.problems:
            self.stderr.write(f"alert {alert_id} left out: {why}")
        counts = ", ".join(f"{k}: {v}" for k, v in result.counts().items()) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"exported {result.exported} reviewed alert(s) to {opts['out']} ({counts})"
                + (f"; {len(result.problems)} left out" if result.problems else "")
            )
        )
