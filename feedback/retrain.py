"""A retraining run, as ``manage.py retrain`` and the Celery task do it.

1. the reviewed alerts are exported (``feedback.export``) into the run's folder;
2. ``detection.retrain_run.run_retrain`` trains the candidate on the base packs and that
   export and compares it with the active model on the held-back data;
3. the candidate is registered (``feedback.registry_link.register_candidate``).

With a ``RetrainJob`` row, the row follows the run: ``running`` with its progress (0..1) and
a message for the models page, then ``done`` with its candidate, or ``failed`` with the error.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from detection.model_comparison import promotion_rule
from detection.retrain_run import RetrainOutcome, change_words, run_retrain
from detection.retraining import RetrainError, RetrainOptions

from .export import export_feedback
from .registry_link import (
    active_model_dir,
    active_version,
    promote_candidate,
    register_candidate,
)

log = logging.getLogger(__name__)

# What a run may be asked (RetrainJob.options, the command's options).
RUN_KEYS = ("site", "since", "base", "fixed", "name", "cache_dir", "auto_promote")
OPTION_KEYS = tuple(f.name for f in fields(RetrainOptions))
PROGRESS_EVERY_S = 1.0


class JobProgress:
    """Writes a run's progress and message to its ``RetrainJob`` row (at most once a second,
    and always at a change of message)."""

    def __init__(self, job) -> None:
        self.job = job
        self.last = 0.0
        self.message = ""

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if message == self.message and now - self.last < PROGRESS_EVERY_S:
            return
        self.last, self.message = now, message
        type(self.job).objects.filter(pk=self.job.pk).update(
            progress=round(float(fraction), 4), message=message[:250], updated=timezone.now()
        )

    def finish(self, status: str, message: str, candidate=None, log_text: str = "") -> None:
        fields = {"log": log_text}
        if status == "done":
            fields["progress"] = 1.0
        if candidate is not None:
            fields["candidate"] = candidate
        self.job.end(status, message, **fields)


def run_options(given: dict) -> tuple[RetrainOptions, dict]:
    """``RetrainOptions`` and the run's other settings from a dict (unknown keys refused)."""
    unknown = set(given) - set(OPTION_KEYS) - set(RUN_KEYS)
    if unknown:
        raise RetrainError(f"unknown retraining option(s): {', '.join(sorted(unknown))}")
    chosen = {k: v for k, v in given.items() if k in OPTION_KEYS and v is not None}
    chosen.setdefault("holdout_days", settings.EYESCREAM_RETRAIN_HOLDOUT_DAYS)
    try:
        options = RetrainOptions(**chosen)
    except TypeError as exc:
        raise RetrainError(f"bad retraining options: {exc}") from exc
    options.check()
    run = {k: given.get(k) for k in RUN_KEYS}
    run["base"] = [Path(p) for p in (run["base"] or settings.EYESCREAM_RETRAIN_BASE_PACKS)]
    run["fixed"] = Path(run["fixed"] or settings.EYESCREAM_RETRAIN_FIXED_PACK)
    if run["auto_promote"] is None:
        run["auto_promote"] = bool(settings.EYESCREAM_RETRAIN_AUTO_PROMOTE)
    if isinstance(run["since"], str):
        try:
            run["since"] = datetime.fromisoformat(run["since"])
        except ValueError as exc:
            raise RetrainError(f"since: not an ISO date or time: {run['since']!r}") from exc
    if run["since"] is not None and timezone.is_naive(run["since"]):
        run["since"] = timezone.make_aware(run["since"])
    return options, run


def retrain(
    given: dict,
    *,
    work: Path | None = None,
    user=None,
    progress=None,
    say=print,
    command: str = "",
    register: bool = True,
):
    """Export, retrain, compare and register; returns ``(outcome, version)`` (version None
    when ``register`` is off). Raises ``RetrainError`` with words for the operator."""
    options, run = run_options(given)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    work = Path(work or settings.EYESCREAM_RETRAIN_DIR / f"run-{stamp}")
    if progress is not None:
        progress(0.0, "exporting the reviewed alerts")
    exported = export_feedback(work / "feedback", run["site"], run["since"])
    for alert_id, why in exported.problems:
        say(f"alert {alert_id} left out of the feedback: {why}")
    where = (f" of site {run['site']!r}" if run["site"] else "") + (
        f" since {run['since'].isoformat()}" if run["since"] else ""
    )
    if not exported.exported:
        raise RetrainError(
            f"no feedback to retrain on: no reviewed alert{where} with a readable snippet"
            + (f" ({len(exported.problems)} left out, see above)" if exported.problems else "")
            + "; confirm or dismiss alerts on the dashboard first"
        )
    say(f"exported {exported.exported} reviewed alert(s){where}: {exported.counts()}")
    parent = active_version(run["site"])
    outcome: RetrainOutcome = run_retrain(
        base_roots=run["base"],
        feedback_root=work / "feedback",
        fixed_root=run["fixed"],
        active_dir=active_model_dir(run["site"]),
        work=work,
        options=options,
        cache_dir=run["cache_dir"],
        name=run["name"] or f"retrain-{stamp}",
        command=command,
        progress=(lambda f, m: progress(0.02 + 0.96 * f, m)) if progress else None,
        log=say,
    )
    say(change_words(outcome.metrics))
    version = None
    if register:
        if progress is not None:
            progress(0.98, "registering the candidate")
        version = register_candidate(outcome, parent=parent, created_by=user)
        if run["auto_promote"]:
            apply_promotion_rule(version, outcome.metrics, run["site"], say)
    return outcome, version


def apply_promotion_rule(version, metrics: dict, site: str | None, say=print) -> bool:
    """The optional automatic rule (``EYESCREAM_RETRAIN_AUTO_PROMOTE``): promote a registered
    candidate where its parent served when ``promotion_rule`` allows it; says why either way."""
    promote, why = promotion_rule(
        metrics.get("changes", {}), float(settings.EYESCREAM_RETRAIN_RECALL_TOLERANCE)
    )
    say(f"version {version.number} {why}")
    if promote:
        promote_candidate(version, site)
    return promote


def run_job(job, *, say=print, command: str = "") -> None:
    """Run a queued ``RetrainJob`` and leave its row ``done`` or ``failed`` (never raises for
    a run that fails: the row says why)."""
    progress = JobProgress(job)
    lines: list[str] = []

    def both(message: str) -> None:
        lines.append(message)
        say(message)

    type(job).objects.filter(pk=job.pk).update(
        status="running",
        started=timezone.now(),
        progress=0.0,
        message="starting",
        updated=timezone.now(),
    )
    try:
        outcome, version = retrain(
            dict(job.options or {}),
            work=settings.EYESCREAM_RETRAIN_DIR / f"job-{job.pk}",
            user=job.requested_by,
            progress=progress,
            say=both,
            command=command or f"retrain job {job.pk}",
        )
    except Exception as exc:  # noqa: BLE001 - every failure ends on the row, with its reason
        if not isinstance(exc, RetrainError):
            log.exception("retraining job %s failed", job.pk)
            lines.append(traceback.format_exc())
        progress.finish("failed", str(exc) or type(exc).__name__, log_text="\n".join(lines))
        return
    number = getattr(version, "number", None)
    progress.finish(
        "done",
        f"candidate version {number} registered" if number else "candidate trained",
        candidate=version,
        log_text="\n".join([*lines, f"candidate at {outcome.candidate_dir}"]),
    )
