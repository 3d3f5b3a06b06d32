"""Registering model versions, and choosing the active one (globally, per site).

``register_version`` validates an artifact folder (its ``config.json`` reads, its weights load
into the network the config describes, its feature configuration is the active version's: live
streams compute features with it) and its checksum, copies it into the model store and creates
the row. It raises ``RegistrationError`` with the reason and never changes which version is
active. ``promote`` and ``rollback`` change the active version of a scope (global, or one
site) and write an ``Activation`` row and an audit event in one transaction; the live path
(``live.model_choice``) picks the change up within about a second.

The shipped model (``EYESCREAM_MODEL_DIR``) is registered after every migrate
(``register_shipped``): version 1 on a new installation; an upgrade that ships a model with a
new checksum registers it as the next version and makes it active only if the global active
version is a shipped one (an admin's promoted choice is never replaced by an upgrade).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.audit import SYSTEM, Actor, record
from detection.artifact_config import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    feature_config,
    load_network,
    read_model_config,
    weights_digest,
)
from devices.models import Site

from .models import Activation, ModelVersion
from .store import artifact_checksum, copy_into_store, store_lock

log = logging.getLogger(__name__)


class RegistrationError(Exception):
    """An artifact that cannot be registered; the message says why."""


class PromotionError(Exception):
    """A promotion or rollback that cannot be done; the message says why."""


def live_features(config: dict) -> dict:
    """What live streams compute from a model's config: every feature parameter and the stride."""
    return {**feature_config(config).to_dict(), "stride_s": float(config["stride_s"])}


def _validate(folder: Path, expected_checksum: str | None, check_features: bool) -> tuple:
    if not folder.is_dir():
        raise RegistrationError(f"{folder} is not a folder")
    try:
        config = read_model_config(folder)
    except (ArtifactError, TypeError, ValueError, KeyError) as exc:
        raise RegistrationError(
            f"{folder}: {CONFIG_FILE} is not a usable model config: {exc}"
        ) from exc
    try:
        checksum = artifact_checksum(folder)
    except OSError as exc:
        raise RegistrationError(f"{folder}: cannot read the artifact: {exc}") from exc
    if expected_checksum and expected_checksum.strip().lower() != checksum:
        raise RegistrationError(
            f"{folder}: checksum mismatch: expected {expected_checksum.strip()}, the files give"
            f" {checksum} (a damaged or different copy)"
        )
    if check_features:
        active = active_version()
        if active is not None and live_features(active.config) != live_features(config):
            theirs, ours = live_features(config), live_features(active.config)
            differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
            raise RegistrationError(
                f"{folder}: its feature configuration differs from the active version"
                f" v{active.number} in {', '.join(differ)} (live streams compute features with"
                " the active version's; retrain with the same features)"
            )
    try:
        load_network(folder, config)
    except (ArtifactError, KeyError, TypeError, ValueError) as exc:
        raise RegistrationError(f"{folder}: corrupt artifact: {exc}") from exc
    existing = ModelVersion.objects.filter(checksum=checksum).first()
    if existing is not None:
        raise RegistrationError(f"{folder}: already registered as version {existing.number}")
    return config, checksum


def register_version(
    artifact_dir,
    *,
    parent: ModelVersion | None = None,
    data_description: str = "",
    metrics: dict | None = None,
    report_dir=None,
    created_by=None,
    expected_checksum: str | None = None,
    source: str = ModelVersion.REGISTERED,
    check_features: bool = True,
) -> ModelVersion:
    """Validate ``artifact_dir``, copy it into the model store and create its version row.

    Raises ``RegistrationError``; never changes the active version."""
    folder = Path(artifact_dir).resolve()
    config, checksum = _validate(folder, expected_checksum, check_features)
    with store_lock():  # the number and the folder: one registration at a time
        number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        try:
            stored = copy_into_store(folder, number, checksum)
        except OSError as exc:
            raise RegistrationError(f"cannot copy {folder} into the model store: {exc}") from exc
        report = ""
        if report_dir is not None:
            report = str(Path(report_dir).resolve())
        elif (stored / "report.md").is_file():
            report = str(stored)
        with transaction.atomic():
            version = ModelVersion.objects.create(
                number=number,
                path=str(stored),
                checksum=checksum,
                digest=weights_digest(stored),
                source=source,
                created_by=created_by,
                parent=parent,
                data_description=data_description,
                config=config,
                metrics=metrics or {},
                report_path=report,
            )
            actor = Actor.of_user(created_by) if created_by is not None else SYSTEM
            record(actor, "register", version, details={"checksum": checksum})
    log.info("model version %s registered from %s", number, folder)
    return version


# ---------------------------------------------------------------------- the active version


def _scope(site: Site | int | None) -> int | None:
    return site.pk if isinstance(site, Site) else site


def _latest(site_id: int | None) -> Activation | None:
    return Activation.objects.filter(site_id=site_id).select_related("version").first()


def active_version(site: Site | int | None = None) -> ModelVersion | None:
    """The site's override, else the global active version; None with an empty registry."""
    site_id = _scope(site)
    if site_id is not None:
        row = _latest(site_id)
        if row is not None and row.version is not None:
            return row.version
    row = _latest(None)
    return row.version if row is not None else None


def active_choices() -> dict[int | None, ModelVersion]:
    """``{None: global version, site_id: override, ...}`` in a couple of queries (the live
    resolver's refresh)."""
    latest: dict[int | None, Activation] = {}
    rows = Activation.objects.select_related("version").order_by("-id")
    for row in rows.iterator():
        latest.setdefault(row.site_id, row)
    return {scope: row.version for scope, row in latest.items() if row.version is not None}


def _activate(site_id, version, previous, action, user) -> Activation:
    row = Activation.objects.create(
        site_id=site_id, version=version, previous=previous, action=action, user=user
    )
    if version is not None and action != Activation.ROLLBACK:
        version.promoted_by = user
        version.promoted_at = timezone.now()
        version.save(update_fields=["promoted_by", "promoted_at"])
    return row


def _actor(user, address: str | None = None) -> Actor:
    return Actor.of_user(user, address) if user is not None else SYSTEM


def promote(
    version: ModelVersion, *, user=None, site: Site | int | None = None, address: str | None = None
) -> None:
    """Make ``version`` the active one, globally or for ``site``; audited."""
    site_id = _scope(site)
    if site_id is not None and not Site.objects.filter(pk=site_id).exists():
        raise PromotionError(f"no site {site_id}")
    if not Path(version.path, WEIGHTS_FILE).is_file():
        raise PromotionError(f"version {version.number}: its files are missing at {version.path}")
    global_active = active_version()
    if global_active is not None and live_features(global_active.config) != live_features(
        version.config
    ):
        raise PromotionError(
            f"version {version.number} computes other features than the active version"
            f" {global_active.number}; live streams could not use it"
        )
    with transaction.atomic():
        current = _latest(site_id)
        previous = current.version if current is not None else None
        if previous is not None and previous.pk == version.pk:
            raise PromotionError(f"version {version.number} is already active there")
        _activate(site_id, version, previous, Activation.PROMOTE, user)
        record(
            _actor(user, address),
            "promote",
            version,
            details={
                "site": site_id,
                "previous": previous.number if previous is not None else None,
            },
        )
    log.info("model version %s promoted (%s)", version.number, site_id or "global")


def rollback(*, user=None, site: Site | int | None = None, address: str | None = None):
    """Go back to what the scope used before its current version; audited.

    Returns the version now active for the scope (for a site whose override is rolled back to
    none: the global version). Repeated rollbacks walk back through the scope's history."""
    site_id = _scope(site)
    with transaction.atomic():
        current = _latest(site_id)
        if current is None or (current.version is None):
            raise PromotionError(
                "nothing to roll back: "
                + ("the site follows the global version" if site_id else "no version is active")
            )
        target = current.previous
        if target is None and site_id is None:
            raise PromotionError(f"version {current.version.number} has no version before it")
        # What the target itself replaced, so that a second rollback goes one step further.
        before = None
        if target is not None:
            earlier = (
                Activation.objects.filter(site_id=site_id, version=target, id__lt=current.id)
                .order_by("-id")
                .first()
            )
            before = earlier.previous if earlier is not None else None
        _activate(site_id, target, before, Activation.ROLLBACK, user)
        record(
            _actor(user, address),
            "rollback",
            type_="registry.modelversion",
            object_id=current.version.pk,
            name=str(current.version),
            details={
                "site": site_id,
                "from": current.version.number,
                "to": target.number if target is not None else None,
            },
        )
    now = active_version(site_id)
    log.info("model rollback (%s): now version %s", site_id or "global", now and now.number)
    return now


# ---------------------------------------------------------------------- the shipped model


def register_shipped(using: str = "default") -> ModelVersion | None:
    """Register ``EYESCREAM_MODEL_DIR`` if its checksum is new (module doc); None when there
    is no readable shipped artifact or it is known already."""
    folder = Path(settings.EYESCREAM_MODEL_DIR)
    if not (folder / CONFIG_FILE).is_file():
        log.warning("no shipped model at %s: the registry stays as it is", folder)
        return None
    try:
        checksum = artifact_checksum(folder)
    except OSError as exc:
        log.warning("shipped model at %s unreadable: %s", folder, exc)
        return None
    if ModelVersion.objects.using(using).filter(checksum=checksum).exists():
        return None
    try:
        version = register_version(
            folder,
            data_description=f"the shipped model ({os.fspath(folder)})",
            source=ModelVersion.SHIPPED,
            check_features=False,
            metrics=_shipped_metrics(folder),
        )
    except RegistrationError as exc:
        log.error("the shipped model could not be registered: %s", exc)
        return None
    active = active_version()
    if active is None or active.source == ModelVersion.SHIPPED:
        with transaction.atomic():
            _activate(None, version, active, Activation.SHIPPED, None)
            record(
                SYSTEM,
                "promote",
                version,
                details={"reason": "shipped model", "previous": active and active.number},
            )
    else:
        log.warning(
            "the shipped model is now version %s; version %s stays active (promoted by an admin)",
            version.number,
            active.number,
        )
    return version


def _shipped_metrics(folder: Path) -> dict:
    try:
        data = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    summary = {k: v for k, v in data.items() if isinstance(v, int | float | str)}
    return {"shipped": summary} if summary else {}
