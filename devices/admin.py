"""Admin for sites, locations and devices; device tokens are shown once, on a page of their own."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from accounts.admin_audit import AuditedAdmin, changed_fields
from accounts.audit import Actor

from . import services
from .models import Device, Location, Site


class LocationInline(admin.TabularInline):
    model = Location
    extra = 0


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ["name", "address", "time_zone", "sensitivity", "latitude", "longitude"]
    search_fields = ["name", "address"]
    inlines = [LocationInline]


@admin.register(Location)
class LocationAdmin(AuditedAdmin):
    list_display = ["name", "site", "latitude", "longitude", "x", "y"]
    list_filter = ["site"]
    search_fields = ["name", "site__name"]


def show_tokens(request, issued: list[tuple[Device, str]]):
    """The only place a plain token is ever shown (not stored, not logged, not in messages)."""
    response = TemplateResponse(
        request, "devices/admin/tokens_issued.html", {"issued": issued, "title": "Device tokens"}
    )
    response["Cache-Control"] = "no-store"
    return response


@admin.register(Device)
class DeviceAdmin(AuditedAdmin):
    list_display = [
        "name",
        "location",
        "enabled",
        "connection_state",
        "last_seen",
        "level_dbfs",
        "clipping",
        "frames_received",
        "seconds_received",
        "frames_rejected",
        "has_token",
    ]
    list_filter = ["enabled", "connection_state", "location__site"]
    search_fields = ["name", "location__name", "location__site__name"]
    actions = ["rotate_tokens", "revoke_tokens", "disable_devices"]
    readonly_fields = [
        "created",
        "has_token",
        "token_created",
        "token_last_used",
        "connection_state",
        "client_name",
        "last_seen",
        "frames_received",
        "samples_received",
        "seconds_received",
        "frames_rejected",
        "windows",
        "level_dbfs",
        "clipping",
        "last_error",
    ]

    @admin.display(boolean=True, description="token")
    def has_token(self, device: Device) -> bool:
        return device.has_token

    def audit_action(self, request, obj, action: str, message) -> str:
        if action == "change" and changed_fields(message) == {"enabled"}:
            return "enable" if obj.enabled else "disable"
        return action

    def response_add(self, request, obj, post_url_continue=None):
        # The "create" event is the admin's own (log_addition); this is the token it issues.
        actor = Actor.of_request(request)
        token = services.issue_token(obj, obj.token_expires, actor, action="issue_token")
        return show_tokens(request, [(obj, token)])

    @admin.action(description="Rotate token (shows the new token once; closes live streams)")
    def rotate_tokens(self, request, queryset):
        actor = Actor.of_request(request)
        issued = [(d, services.issue_token(d, d.token_expires, actor)) for d in queryset]
        return show_tokens(request, issued)

    @admin.action(description="Revoke token (closes live streams)")
    def revoke_tokens(self, request, queryset):
        actor = Actor.of_request(request)
        for device in queryset:
            services.revoke_token(device, actor)
        self.message_user(request, f"Revoked {len(queryset)} token(s).", messages.SUCCESS)

    @admin.action(description="Disable (closes live streams)")
    def disable_devices(self, request, queryset):
        actor = Actor.of_request(request)
        for device in queryset:
            services.set_enabled(device, False, actor)
        self.message_user(request, f"Disabled {len(queryset)} device(s).", messages.SUCCESS)
