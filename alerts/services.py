"""Create and update alerts: snippet file and row first, the broadcast only after commit.

``open_alert`` and ``update_alert`` are called by the live path (through
``database_sync_to_async``) when the decision logic opens, continues or closes an incident.
Order of effects, so nobody ever sees an alert whose audio is missing:

1. the snippet is encoded and written atomically (temporary file + rename) under MEDIA_ROOT;
2. the row is written in a transaction; if that fails (including at commit) the file is removed;
3. after commit: ``alert.created`` / ``alert.updated`` goes to the channel-layer group ``alerts``
   (queued in order, without waiting, in a process that runs a ``broadcasting.Broadcaster``),
   then ``signals.alert_stored`` is sent: ``tasks`` queues the picture, and ``notifications``
   the deliveries to the site's destinations.

Call them outside any transaction (autocommit), as the consumer does. If a caller wraps them in
its own transaction and rolls it back, nothing is broadcast and the file left behind is removed
by the retention task's orphan sweep (``purge_orphan_files``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from devices.models import Device

from .broadcasting import send_to_group
from .models import Alert
from .serializers import serialize_alert
from .signals import alert_stored
from .snippets import encode_snippet, remove_quietly, snippet_name, write_atomic

log = logging.getLogger(__name__)

ALERTS_GROUP = "alerts"
CREATED, UPDATED = "alert.created", "alert.updated"


@dataclass(frozen=True)
class RunningScores:
    """A running incident's scores so far (``update_running_alerts``)."""

    peak_score: float
    mean_score: float
    score_curve: Sequence[Sequence[float]]


def snippet_format() -> str:
    return getattr(settings, "EYESCREAM_SNIPPET_FORMAT", "flac")


def clean_curve(score_curve: Iterable[Sequence[float]]) -> list[list[float]]:
    """Validate ``[[seconds from snippet start, prob], ...]`` and make it JSON-plain."""
    curve = []
    for point in score_curve:
        if len(point) != 2:
            raise ValueError(f"score curve points are [seconds, prob] pairs, got {point!r}")
        t, p = float(point[0]), float(point[1])
        if not (math.isfinite(t) and math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"bad score curve point {point!r}: need finite time, prob in [0, 1]")
        curve.append([round(t, 4), round(p, 4)])
    return curve


def _check_scores(peak_score: float, mean_score: float) -> tuple[float, float]:
    peak, mean = float(peak_score), float(mean_score)
    for name, value in (("peak_score", peak), ("mean_score", mean)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return peak, mean


def broadcast(event_type: str, alert: Alert) -> None:
    """Send the serialized alert to every dashboard (never raises: the row is already saved).

    Queued without waiting where the process runs a ``broadcasting.Broadcaster`` (daphne).
    """
    try:
        send_to_group(ALERTS_GROUP, {"type": event_type, "alert": serialize_alert(alert)})
    except Exception:
        log.exception("could not broadcast %s for alert %s", event_type, alert.pk)


def _after_commit(event_type: str, alert: Alert, render: bool) -> None:
    broadcast(event_type, alert)
    try:  # the follow-ups (picture, deliveries) never fail the write
        alert_stored.send(Alert, event_type=event_type, alert=alert, render=render)
    except Exception:
        log.exception("could not queue the follow-ups of alert %s", alert.pk)


def _write_snippet(device_id: int, started_at: datetime, audio: np.ndarray, rate: int) -> str:
    """Store the snippet; "" (no file) for empty audio: an alert is never lost for its audio."""
    if np.asarray(audio).size == 0:
        log.warning("device %s: alert at %s has no snippet audio", device_id, started_at)
        return ""
    fmt = snippet_format()
    data = encode_snippet(audio, rate, fmt)
    name = snippet_name(device_id, started_at, fmt)
    write_atomic(settings.MEDIA_ROOT, name, data)
    return name


def open_alert(
    *,
    device_id: int,
    started_at: datetime,
    peak_score: float,
    mean_score: float,
    score_curve: Iterable[Sequence[float]],
    model_version: str,
    snippet: np.ndarray,
    snippet_rate: int,
    snippet_started_at: datetime,
    stream: str = "",
    time_source: str = "",
    model_number: int | None = None,
) -> Alert:
    """Store a new incident's alert with its snippet; broadcast ``alert.created`` after commit.

    ``score_curve`` is ``[[seconds from snippet_started_at, smoothed prob], ...]``;
    ``snippet`` mono float32 audio at ``snippet_rate`` (capped at ``snippets.MAX_SNIPPET_S``);
    ``stream`` the live connection that owns the incident, ``time_source`` where its times
    come from (``Alert.DEVICE_TIME`` or ``Alert.ARRIVAL_TIME``); ``model_number`` the registered
    model version that scored it.
    """
    peak, mean = _check_scores(peak_score, mean_score)
    curve = clean_curve(score_curve)
    device = Device.objects.select_related("location__site").get(pk=device_id)
    location, site = device.location, device.location.site
    name = _write_snippet(device_id, started_at, snippet, snippet_rate)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                device=device,
                device_name=device.name,
                site_name=site.name,
                location_name=location.name,
                latitude=location.latitude if location.latitude is not None else site.latitude,
                longitude=location.longitude if location.longitude is not None else site.longitude,
                location_x=location.x,
                location_y=location.y,
                started_at=started_at,
                peak_score=peak,
                mean_score=mean,
                score_curve=curve,
                model_version=model_version or "",
                model_number=model_number,
                snippet=name,
                snippet_started_at=snippet_started_at,
                stream=stream,
                time_source=time_source,
            )
            transaction.on_commit(lambda: _after_commit(CREATED, alert, render=True))
    except BaseException:
        remove_quietly(settings.MEDIA_ROOT, name)
        raise
    log.info(
        "alert %s opened at device %s (peak %.2f)",
        alert.pk,
        device_id,
        peak,
        extra={"alert_id": alert.pk, "device_id": device_id, "site_id": site.pk},
    )
    return alert


def open_alert_once(*, device_id: int, started_at: datetime, **kwargs) -> Alert:
    """``open_alert``, unless this device already has an alert that started at ``started_at``
    (an incident's start is exact stream time, so that is the same incident): then that alert,
    broadcast again. For writing an opening again whose first writer died before it could
    say whether it had committed (``writer_process.WriterLost``)."""
    existing = Alert.objects.filter(device_id=device_id, started_at=started_at).first()
    if existing is None:
        return open_alert(device_id=device_id, started_at=started_at, **kwargs)
    log.warning(
        "alert %s of device %s was stored already; not opened twice", existing.pk, device_id
    )
    broadcast(CREATED, existing)
    return existing


def update_alert(
    alert_id: int,
    *,
    ended_at: datetime | None = None,
    peak_score: float,
    mean_score: float,
    score_curve: Iterable[Sequence[float]],
    snippet: np.ndarray | None = None,
    snippet_rate: int | None = None,
    snippet_started_at: datetime | None = None,
) -> Alert:
    """Update the alert of a continuing (or, with ``ended_at``, closed) incident.

    A new ``snippet`` replaces the old file (new file written first; the old one is deleted
    after commit). ``ended_at=None`` leaves the end as it is. Broadcasts ``alert.updated``.
    """
    peak, mean = _check_scores(peak_score, mean_score)
    curve = clean_curve(score_curve)
    if snippet is not None and snippet_rate is None:
        raise ValueError("a new snippet needs its snippet_rate")
    new_name = old_name = ""
    try:
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=alert_id)
            if snippet is not None and np.asarray(snippet).size:
                new_name = _write_snippet(
                    alert.device_id or 0, alert.started_at, snippet, snippet_rate
                )
                old_name = alert.snippet.name
                alert.snippet = new_name
                if snippet_started_at is not None:
                    alert.snippet_started_at = snippet_started_at
            if ended_at is not None:
                alert.ended_at = ended_at
                alert.end_reason = ""  # the live path ended it (after a recovery, it still may)
            alert.peak_score, alert.mean_score, alert.score_curve = peak, mean, curve
            alert.save()
            render = bool(new_name) or ended_at is not None

            def after() -> None:
                if old_name and old_name != new_name:
                    remove_quietly(settings.MEDIA_ROOT, old_name)
                _after_commit(UPDATED, alert, render=render)

            transaction.on_commit(after)
    except BaseException:
        if new_name:
            remove_quietly(settings.MEDIA_ROOT, new_name)
        raise
    return alert


def update_running_alerts(scores: Mapping[int, RunningScores]) -> list[int]:
    """Scores of several running incidents at once: one prepared UPDATE for all rows
    (``executemany``) and one read back, in one transaction; ``alert.updated`` for each after
    commit. Returns the ids whose row exists (an alert deleted meanwhile is skipped).

    The live path sends a running incident's scores here, batched for every stream of the
    process, instead of one ``update_alert`` transaction each (four statements and a thread hop
    per incident and second); the final update with the snippet stays ``update_alert``.
    Only the score fields and ``updated`` are written: a review saved meanwhile is kept.
    """
    if not scores:
        return []
    rows = []
    curve_field = Alert._meta.get_field("score_curve")
    now = Alert._meta.get_field("updated").get_db_prep_value(timezone.now(), connection)
    for alert_id, running in scores.items():
        peak, mean = _check_scores(running.peak_score, running.mean_score)
        curve = curve_field.get_db_prep_value(clean_curve(running.score_curve), connection)
        rows.append((peak, mean, curve, now, int(alert_id)))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany(_running_update_sql(), rows)
        alerts = list(Alert.objects.filter(pk__in=[row[-1] for row in rows]))
        transaction.on_commit(lambda: [broadcast(UPDATED, alert) for alert in alerts])
    return sorted(alert.pk for alert in alerts)


def _running_update_sql() -> str:
    meta = Alert._meta
    quote = connection.ops.quote_name
    sets = ", ".join(
        f"{quote(meta.get_field(name).column)} = %s"
        for name in ("peak_score", "mean_score", "score_curve", "updated")
    )
    return f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s"


def close_lost_alerts(device_id: int | None = None) -> list[int]:
    """Close open alerts whose stream is gone; ``alert.updated`` for each after commit.

    An open alert's stream is gone when its device is deleted, offline, or connected through
    another connection than the one that opened it (``Alert.stream``). Such an alert ends at
    its last update (the last time its incident was known to go on) with ``end_reason``
    ``stream_lost``. ``device_id`` limits the sweep to one device. Returns the closed ids.
    Each closed alert is stored like any other end (``signals.alert_stored``), without a new
    picture.
    """
    open_alerts = Alert.objects.filter(ended_at__isnull=True).filter(
        Q(device__isnull=True)
        | ~Q(device__connection_state=Device.ONLINE)
        | ~Q(device__connection=F("stream"))
    )
    if device_id is not None:
        open_alerts = open_alerts.filter(device_id=device_id)
    with transaction.atomic():
        lost = list(open_alerts.select_for_update(of=("self",)))
        for alert in lost:
            alert.ended_at = max(alert.updated, alert.started_at)
            alert.end_reason = Alert.STREAM_LOST
            alert.save(update_fields=["ended_at", "end_reason", "updated"])
        transaction.on_commit(lambda: [_after_commit(UPDATED, alert, False) for alert in lost])
    if lost:
        log.warning("closed %d alert(s) whose stream was lost: %s", len(lost), [a.pk for a in lost])
    return [alert.pk for alert in lost]
