"""``AuditedAdmin``: every add, change and delete made in ``/admin/`` becomes an ``AuditEvent``.

Django's admin calls ``log_addition``, ``log_change`` and ``log_deletions`` inside the request's
change (the change view's transaction); the audit event is written beside its own ``LogEntry``.
``audit_action`` names the action (``create``, ``change``, ``delete``); a model admin overrides it
to say more (a verdict changed, a device disabled).
"""

from __future__ import annotations

from django.contrib import admin

from .audit import Actor, record


def change_details(message) -> dict:
    return {"changes": message} if message else {}


class AuditedAdmin(admin.ModelAdmin):
    def audit_action(self, request, obj, action: str, message) -> str:
        return action

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        action = self.audit_action(request, obj, "create", message)
        record(Actor.of_request(request), action, obj, details=change_details(message))
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        action = self.audit_action(request, obj, "change", message)
        record(Actor.of_request(request), action, obj, details=change_details(message))
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        actor = Actor.of_request(request)
        for obj in queryset:
            record(actor, self.audit_action(request, obj, "delete", None), obj)
        return entries


def changed_fields(message) -> set[str]:
    """Field labels a change message (``construct_change_message``) says were changed."""
    fields: set[str] = set()
    for entry in message if isinstance(message, list) else []:
        changed = entry.get("changed")
        if changed and "name" not in changed:  # an inline's change names its model
            fields.update(changed.get("fields", []))
    return {f.lower() for f in fields}


def touched_inlines(message) -> set[str]:
    """Inline models (their verbose names) a change message says were added/changed/deleted."""
    names: set[str] = set()
    for entry in message if isinstance(message, list) else []:
        for kind in ("added", "changed", "deleted"):
            name = entry.get(kind, {}).get("name")
            if name:
                names.add(str(name).lower())
    return names
