"""``manage.py retrain``: fine-tune a candidate on the operators' verdicts, compare it with
the active model on held-back data, and register it (docs/models.md)."""

from __future__ import annotations

import shlex
import sys

from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import CommandError

from detection.progress import tqdm
from detection.retraining import RetrainError, RetrainOptions
from eyescream_site.management.batch_command import BatchCommand
from feedback.export import parse_since
from feedback.registry_link import RegistrationError, get_job
from feedback.retrain import retrain, run_job


class Command(BatchCommand):
    help = (
        "Retrain the detector on the reviewed alerts: export them, fine-tune the active model"
        " (or train from scratch) on the base packs plus that feedback, compare the candidate"
        " with the active model on held-back feedback and a fixed pack, and register it."
    )

    def add_arguments(self, parser):
        d = RetrainOptions()
        parser.add_argument("--job", type=int, help="run this queued RetrainJob (the task does)")
        parser.add_argument("--site", help="only the feedback of this site")
        parser.add_argument("--since", help="only verdicts at or after this ISO date/time")
        parser.add_argument(
            "--base",
            action="append",
            help="base pack folder (repeat for more; default EYESCREAM_RETRAIN_BASE_PACKS)",
        )
        parser.add_argument("--fixed", help="fixed evaluation pack (EYESCREAM_RETRAIN_FIXED_PACK)")
        parser.add_argument("--epochs", type=int, default=d.epochs)
        parser.add_argument(
            "--from-scratch",
            action="store_true",
            help="fresh weights instead of the active model's (needs more epochs)",
        )
        parser.add_argument(
            "--holdout-days",
            type=float,
            help="each site's feedback within this many days of its newest verdict is held back"
            " for evaluation (default EYESCREAM_RETRAIN_HOLDOUT_DAYS; 0: none)",
        )
        parser.add_argument("--max-files", type=int, help="base files trained on, at most")
        parser.add_argument("--max-eval-files", type=int, help="fixed-pack files, at most")
        parser.add_argument("--feedback-repeats", type=int, default=d.feedback_repeats)
        parser.add_argument("--lr", type=float, help="default 3e-4 fine-tuning, 1e-3 from scratch")
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--threads", type=int, default=d.threads)
        parser.add_argument("--name", help="candidate name (default retrain-<time>)")
        parser.add_argument("--cache-dir", help="feature cache (default var/cache/features)")
        parser.add_argument("--no-register", action="store_true", help="train and report only")
        parser.add_argument(
            "--auto-promote",
            action="store_true",
            default=None,
            help="promote the candidate when the automatic rule allows it"
            " (EYESCREAM_RETRAIN_AUTO_PROMOTE; docs/models.md)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        say = self.stdout.write
        if opts.get("job"):
            try:
                job = get_job(opts["job"])
            except ObjectDoesNotExist:
                raise CommandError(f"no retraining job {opts['job']}") from None
            run_job(job, say=say)
            job.refresh_from_db()
            if job.status != "done":
                raise CommandError(f"retraining job {job.pk} {job.status}: {job.message}")
            self.stdout.write(self.style.SUCCESS(f"retraining job {job.pk}: {job.message}"))
            return
        try:
            since = parse_since(opts.get("since"))
        except ValueError as exc:
            raise CommandError(f"--{exc}") from exc
        given = {
            "site": opts.get("site"),
            "since": since,
            "base": opts.get("base"),
            "fixed": opts.get("fixed"),
            "name": opts.get("name"),
            "cache_dir": opts.get("cache_dir"),
            "auto_promote": opts.get("auto_promote"),
            "epochs": opts["epochs"],
            "from_scratch": opts["from_scratch"],
            "holdout_days": opts.get("holdout_days"),
            "max_files": opts.get("max_files"),
            "max_eval_files": opts.get("max_eval_files"),
            "feedback_repeats": opts["feedback_repeats"],
            "lr": opts.get("lr"),
            "seed": opts["seed"],
            "threads": opts["threads"],
            "progress": not opts["no_progress"],
        }
        command = shlex.join(["python", *sys.argv]) if len(sys.argv) > 1 else "retrain"
        bar = tqdm(None, total=100, desc="retrain", unit="%", disable=opts["no_progress"])

        def progress(fraction: float, message: str) -> None:
            bar.update(max(0, round(100 * fraction) - bar.n))
            bar.set_postfix_str(message[:60])

        try:
            outcome, version = retrain(
                given,
                say=say,
                command=command,
                register=not opts["no_register"],
                progress=progress,
            )
        except RetrainError as exc:
            raise CommandError(str(exc)) from exc
        except RegistrationError as exc:
            raise CommandError(f"the candidate was not registered: {exc}") from exc
        finally:
            bar.close()
        where = f"version {version.number}" if version is not None else "not registered"
        self.stdout.write(
            self.style.SUCCESS(
                f"candidate saved to {outcome.candidate_dir} ({where}); report in"
                f" {outcome.report_dir}"
            )
        )
