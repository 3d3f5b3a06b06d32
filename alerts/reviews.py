"""Confirm or dismiss an alert: one Review row, one status change; the first decision wins.

The status moves from ``new`` with a conditional UPDATE (``... WHERE status = 'new'``) in the same
transaction as the Review row, so of two operators deciding at once exactly one succeeds (the
database serialises the two UPDATEs; the second matches no row) and the other gets
``AlreadyReviewed`` naming who decided. ``alert.updated`` goes to every dashboard after commit.

A verdict can be changed or withdrawn (undo: back to ``new``) with ``revise_review``, which
names the verdict it replaces: if another operator changed it meanwhile, the revision is
refused the same way. Each revision is a new Review row; none is edited or deleted, so the
rows are the history of who decided what and when.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, record
from devices.local_time import site_zones

from .broadcasting import send_to_group
from .models import Alert, Review
from .serializers import serialize_alert
from .services import ALERTS_GROUP, UPDATED
from .signals import alert_reviewed

log = logging.getLogger(__name__)

LABELS = dict(Review.LABELS)
DISMISS_LABELS = ("0_0", "0_1", "0_2")
MAX_NOTE = 2000


class ReviewError(ValueError):
    """The request itself is wrong (unknown label, missing alert)."""


class NothingToRevise(ReviewError):
    """The alert has no verdict in force to change or withdraw."""


class AlreadyReviewed(Exception):
    """Someone decided first; ``review`` is their Review (None if the status was set otherwise)."""

    def __init__(self, alert: Alert, review: Review | None) -> None:
        self.alert, self.review = alert, review
        who = review_user(review) if review else "someone else"
        super().__init__(f"alert {alert.pk} was already {alert.status} by {who}")


def review_user(review: Review) -> str:
    return review.user.get_username() if review.user else "a deleted user"


def status_for(label: str) -> str:
    if label == Review.WITHDRAWN:
        return Alert.NEW
    if label == Review.SCREAM:
        return Alert.CONFIRMED
    if label in DISMISS_LABELS:
        return Alert.DISMISSED
    raise ReviewError(f"unknown label {label!r}: use one of {', '.join(LABELS)}")


def review_dict(review: Review | None) -> dict | None:
    if review is None:
        return None
    return {
        "id": review.pk,
        "user": review_user(review),
        "label": review.label,
        "label_name": LABELS.get(review.label, "verdict withdrawn"),
        "note": review.note,
        "created": review.created.isoformat(),
    }


def latest_review(alert: Alert) -> Review | None:
    return alert.reviews.select_related("user").order_by("-created", "-id").first()


def alert_payload(alert: Alert) -> dict:
    """``serialize_alert`` plus the deciding review (who, label, note, when) if any."""
    return {**serialize_alert(alert), "review": review_dict(latest_review(alert))}


def latest_reviews(alert_ids: list[int]) -> dict[int, Review]:
    """The newest review of each alert that has one (one query)."""
    latest: dict[int, Review] = {}
    reviews = Review.objects.filter(alert__in=alert_ids).select_related("user")
    for review in reviews.order_by("created", "id"):
        latest[review.alert_id] = review
    return latest


def alert_payloads(alerts: list[Alert]) -> list[dict]:
    """``alert_payload`` of each, with one query for all their reviews."""
    latest = latest_reviews([a.pk for a in alerts])
    zones = site_zones(a.site_name for a in alerts)
    return [
        {**serialize_alert(a, zones[a.site_name]), "review": review_dict(latest.get(a.pk))}
        for a in alerts
    ]


def broadcast_review(alert: Alert) -> None:
    """Tell every dashboard, then ``signals.alert_reviewed`` (never raises: the review is
    already saved)."""
    try:
        send_to_group(ALERTS_GROUP, {"type": UPDATED, "alert": alert_payload(alert)})
    except Exception:
        log.exception("could not broadcast the review of alert %s", alert.pk)
    for _receiver, error in alert_reviewed.send_robust(Alert, alert=alert):
        if isinstance(error, Exception):
            log.error("a receiver of the review of alert %s failed: %r", alert.pk, error)


def review_alert(
    alert_id: int, user, label: str, note: str = "", address: str | None = None
) -> Alert:
    """Record ``user``'s verdict on a new alert; raise ``AlreadyReviewed`` if it is decided.

    The verdict is audited (``review``, with the label and the client ``address``)."""
    status = status_for(label)
    note = (note or "").strip()[:MAX_NOTE]
    with transaction.atomic():
        won = Alert.objects.filter(pk=alert_id, status=Alert.NEW).update(
            status=status, updated=timezone.now()
        )
        if not won:
            try:
                alert = Alert.objects.get(pk=alert_id)
            except Alert.DoesNotExist:
                raise ReviewError(f"no alert {alert_id}") from None
            raise AlreadyReviewed(alert, latest_review(alert))
        Review.objects.create(alert_id=alert_id, user=user, label=label, note=note)
        alert = Alert.objects.get(pk=alert_id)
        details = {"label": label, "status": status, "note": note}
        record(Actor.of_user(user, address), "review", alert, details=details)
        transaction.on_commit(lambda: broadcast_review(alert))
    log.info(
        "alert %s reviewed: %s",
        alert_id,
        status,
        extra={
            "alert_id": alert_id,
            "device_id": alert.device_id,
            "user_id": getattr(user, "pk", None),
        },
    )
    return alert


def revise_review(
    alert_id: int,
    user,
    label: str,
    replaces: int | None,
    note: str = "",
    address: str | None = None,
) -> Alert:
    """Change the verdict ``replaces`` (a Review id: the alert's newest) to ``label``, or
    withdraw it (``Review.WITHDRAWN``: the alert is ``new`` again). Raises ``AlreadyReviewed``
    if the alert's newest review is another one by now (someone else revised it first).

    Audited as ``review`` like a first verdict, with the review it ``replaces`` in the details."""
    status = status_for(label)
    note = (note or "").strip()[:MAX_NOTE]
    with transaction.atomic():
        try:
            alert = Alert.objects.select_for_update().get(pk=alert_id)
        except Alert.DoesNotExist:
            raise ReviewError(f"no alert {alert_id}") from None
        current = latest_review(alert)
        if current is None or current.pk != replaces or current.label == Review.WITHDRAWN:
            if current is None or current.label == Review.WITHDRAWN:
                raise NothingToRevise(f"alert {alert_id} has no verdict to change")
            raise AlreadyReviewed(alert, current)
        Review.objects.create(alert=alert, user=user, label=label, note=note)
        alert.status = status
        alert.save(update_fields=["status", "updated"])
        details = {"label": label, "status": status, "note": note, "replaces": replaces}
        record(Actor.of_user(user, address), "review", alert, details=details)
        transaction.on_commit(lambda: broadcast_review(alert))
    return alert


MAX_BULK = 500


def review_many(
    alert_ids, user, label: str, note: str = "", address: str | None = None
) -> tuple[list[int], dict[int, str]]:
    """Bulk acknowledge: one verdict and reason for several new alerts.

    Each alert is decided on its own (``review_alert``: its own Review row, its own audit event,
    its own broadcast), so one decided meanwhile by someone else is skipped and the others still
    get the verdict. Returns the ids decided and, for each one skipped, why in words.
    """
    if label == Review.WITHDRAWN:
        raise ReviewError("choose a verdict: confirm, or a reason to dismiss")
    status_for(label)  # an unknown label refuses the whole batch before anything is written
    ids = list(dict.fromkeys(int(i) for i in alert_ids))
    if not ids:
        raise ReviewError("select at least one alert")
    if len(ids) > MAX_BULK:
        raise ReviewError(f"at most {MAX_BULK} alerts at once (got {len(ids)})")
    decided: list[int] = []
    skipped: dict[int, str] = {}
    for alert_id in ids:
        try:
            review_alert(alert_id, user, label, note, address=address)
        except AlreadyReviewed as taken:
            skipped[alert_id] = str(taken)
        except ReviewError as error:
            skipped[alert_id] = str(error)
        else:
            decided.append(alert_id)
    return decided, skipped
