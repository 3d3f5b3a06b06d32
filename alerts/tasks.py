"""Celery tasks of the alerts app: spectrogram images, retention purge, offline sweep.

``queue_follow_ups`` listens to ``signals.alert_stored`` (sent by ``services`` after an alert's
commit) and queues the picture; ``services`` itself never imports this module. Deliveries to
the site's destinations (webhooks, e-mail, MQTT) are queued by ``notifications``.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import soundfile
from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from devices.models import Device
from devices.signals import connection_changed

from .broadcasting import send_to_group

# Imported with the module (NumPy, Pillow, the feature code), not at the first alert of a
# burst, where an import would hold the serving process's GIL.
from .images import active_feature_config, render_png
from .models import Alert
from .services import ALERTS_GROUP, UPDATED, broadcast, close_lost_alerts
from .signals import alert_stored
from .snippets import remove_quietly, write_atomic
from .task_queue import dispatch

log = logging.getLogger(__name__)

ORPHAN_MIN_AGE_S = 3600.0  # files this young may still be about to be committed
MEDIA_FOLDERS = ("snippets", "spectrograms")


# ------------------------------------------------------------------------------- follow-ups


@receiver(alert_stored, dispatch_uid="alerts-follow-ups")
def queue_follow_ups(sender, event_type: str, alert: Alert, render: bool, **kwargs) -> None:
    """After an alert's commit: its picture (when its audio or end changed)."""
    if render and getattr(settings, "EYESCREAM_ALERT_IMAGES", True):
        dispatch(render_alert_image, alert.pk, alert.snippet.name)


# ------------------------------------------------------------------------------- images


def retry_when_locked(write, attempts: int = 5, pause_s: float = 0.05):
    """Run a short database write, again after a pause while SQLite says it is locked.

    Embedded mode's one SQLite file is shared by the live path and the picture thread; a
    picture is worth a few retries, never a lost alert update.
    """

    for attempt in range(1, attempts):
        try:
            return write()
        except OperationalError as error:
            if "locked" not in str(error):
                raise
            time.sleep(pause_s * attempt)
    return write()  # the last attempt: its error goes to the caller


def model_dir_of(alert: Alert) -> Path:
    """The folder of the model version that scored ``alert`` (``v<N>`` in the model store, the
    layout of ``registry.store``), else the shipped model's."""
    if alert.model_number is not None:
        folder = Path(settings.EYESCREAM_MODEL_STORE) / f"v{alert.model_number}"
        if (folder / "config.json").is_file():
            return folder
    return Path(settings.EYESCREAM_MODEL_DIR)


@shared_task
def render_alert_image(alert_id: int, snippet: str | None = None) -> str | None:
    """Render the alert's spectrogram + score curve PNG; returns its media name (or None).

    ``snippet``: the snippet this task was queued for. When the alert has a newer one by the
    time the task runs (a burst of alerts left a backlog, and the incident closed meanwhile),
    the newer snippet's own task draws it and this one draws nothing.
    """

    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None or not alert.snippet or snippet not in (None, alert.snippet.name):
        return None
    rendered_snippet = alert.snippet.name
    audio, rate = soundfile.read(alert.snippet.path, dtype="float32", always_2d=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    cfg, threshold = active_feature_config(model_dir_of(alert))
    png = render_png(
        audio,
        rate,
        alert.score_curve,
        cfg,
        threshold=threshold,
        title=f"{alert.site_name} / {alert.location_name} / {alert.device_name}",
    )
    name = f"spectrograms/{alert.started_at:%Y/%m/%d}/alert{alert.pk}-{uuid.uuid4().hex[:10]}.png"
    write_atomic(settings.MEDIA_ROOT, name, png)

    def attach() -> int:
        with transaction.atomic():
            # Only if the snippet is still the one drawn (a newer snippet renders again).
            return Alert.objects.filter(pk=alert.pk, snippet=rendered_snippet).update(
                spectrogram=name, updated=timezone.now()
            )

    try:
        changed = retry_when_locked(attach)
    except Exception:
        remove_quietly(settings.MEDIA_ROOT, name)
        raise
    if not changed:
        remove_quietly(settings.MEDIA_ROOT, name)
        return None
    remove_quietly(settings.MEDIA_ROOT, alert.spectrogram.name)
    alert.refresh_from_db()
    broadcast(UPDATED, alert)
    return name


# ------------------------------------------------------------------------------- retention


@shared_task
def purge_old_alerts() -> dict:
    """Delete alerts (rows and files) past their retention; then remove orphaned files.

    Unreviewed alerts live ``EYESCREAM_ALERT_RETENTION_DAYS`` (default 90); reviewed ones are
    training labels and live ``EYESCREAM_REVIEWED_ALERT_RETENTION_DAYS`` (default 365).
    """

    now = timezone.now()
    days = float(getattr(settings, "EYESCREAM_ALERT_RETENTION_DAYS", 90))
    reviewed_days = float(getattr(settings, "EYESCREAM_REVIEWED_ALERT_RETENTION_DAYS", 365))
    expired = Alert.objects.filter(
        started_at__lt=now - timedelta(days=days), reviews__isnull=True
    ) | Alert.objects.filter(started_at__lt=now - timedelta(days=reviewed_days))
    ids = list(expired.values_list("pk", flat=True).distinct())
    deleted = 0
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        with transaction.atomic():
            rows = Alert.objects.filter(pk__in=batch)
            files = [n for pair in rows.values_list("snippet", "spectrogram") for n in pair if n]
            deleted += rows.delete()[1].get("alerts.Alert", 0)
            transaction.on_commit(
                lambda files=files: [remove_quietly(settings.MEDIA_ROOT, n) for n in files]
            )
    orphans = purge_orphan_files()
    log.info("retention purge: %d alerts, %d orphaned files", deleted, orphans)
    return {"alerts": deleted, "orphans": orphans}


def purge_orphan_files(min_age_s: float = ORPHAN_MIN_AGE_S) -> int:
    """Remove snippet/image files older than ``min_age_s`` that no alert refers to."""

    root = Path(settings.MEDIA_ROOT)
    cutoff = time.time() - min_age_s
    candidates = []
    for folder in MEDIA_FOLDERS:
        for dirpath, _dirs, names in os.walk(root / folder):
            for file_name in names:
                path = Path(dirpath) / file_name
                if path.stat().st_mtime < cutoff:
                    candidates.append(path.relative_to(root).as_posix())
    removed = 0
    for start in range(0, len(candidates), 500):
        batch = candidates[start : start + 500]
        used = set()
        for snippet, image in Alert.objects.filter(
            Q(snippet__in=batch) | Q(spectrogram__in=batch)
        ).values_list("snippet", "spectrogram"):
            used.update((snippet, image))
        for name in batch:
            if name not in used:
                (root / name).unlink(missing_ok=True)
                removed += 1
    return removed


# ------------------------------------------------------------------------------- devices


@shared_task
def sweep_offline_devices() -> list[int]:
    """Mark devices offline that look online but sent nothing for a while (a dead process).

    Live streams write ``last_seen`` about once a second, so only devices whose connection
    ended without a clean close (a killed daphne) are caught. Dashboards get
    ``devices.offline`` on the ``alerts`` group. Then alerts left open by a lost stream (its
    device offline, or connected again through another connection) are closed.
    """

    after_s = float(getattr(settings, "EYESCREAM_DEVICE_OFFLINE_AFTER_S", 60))
    cutoff = timezone.now() - timedelta(seconds=after_s)
    stale = Device.objects.filter(connection_state=Device.ONLINE).filter(
        Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True)
    )
    ids = list(stale.values_list("pk", flat=True))
    if not ids:
        close_lost_alerts()
        return []
    # Re-check the condition in the UPDATE: a stream may have written last_seen meanwhile.
    with transaction.atomic():
        marked = list(stale.filter(pk__in=ids).select_for_update().values_list("pk", flat=True))
        stale.filter(pk__in=marked).update(connection_state=Device.OFFLINE, connection="")
        for device_id in marked:
            connection_changed(device_id, Device.OFFLINE)
    try:
        send_to_group(ALERTS_GROUP, {"type": "devices.offline", "device_ids": ids})
    except Exception:
        log.exception("could not broadcast devices.offline")
    log.info("marked %d devices offline: %s", len(ids), ids)
    close_lost_alerts()
    return ids
