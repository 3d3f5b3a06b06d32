from django.contrib import admin
from django.utils.html import format_html

from accounts.admin_audit import AuditedAdmin, changed_fields, touched_inlines

from .models import Alert, Review


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    fields = ("label", "user", "note", "created")
    readonly_fields = ("created",)


@admin.register(Alert)
class AlertAdmin(AuditedAdmin):
    list_display = (
        "id",
        "started_at",
        "device_name",
        "site_name",
        "location_name",
        "peak_score",
        "status",
        "model_version",
    )
    list_filter = ("status", "site_name", "model_version")
    search_fields = ("device_name", "site_name", "location_name")
    date_hierarchy = "started_at"
    readonly_fields = (
        "device",
        "device_name",
        "site_name",
        "location_name",
        "latitude",
        "longitude",
        "location_x",
        "location_y",
        "started_at",
        "ended_at",
        "peak_score",
        "mean_score",
        "score_curve",
        "model_version",
        "snippet",
        "snippet_started_at",
        "snippet_player",
        "spectrogram",
        "spectrogram_image",
        "created",
        "updated",
    )
    inlines = [ReviewInline]

    def audit_action(self, request, obj, action: str, message) -> str:
        """A change of the status or of a review is a changed verdict."""
        if action == "change" and (
            "status" in changed_fields(message) or "review" in touched_inlines(message)
        ):
            return "change_verdict"
        return action

    @admin.display(description="listen")
    def snippet_player(self, alert: Alert):
        if not alert.snippet:
            return "-"
        return format_html('<audio controls preload="none" src="{}"></audio>', alert.snippet.url)

    @admin.display(description="spectrogram and score")
    def spectrogram_image(self, alert: Alert):
        if not alert.spectrogram:
            return "-"
        return format_html('<img src="{}" style="max-width: 800px">', alert.spectrogram.url)


@admin.register(Review)
class ReviewAdmin(AuditedAdmin):
    list_display = ("alert", "label", "user", "created")
    list_filter = ("label",)
    raw_id_fields = ("alert",)

    def audit_action(self, request, obj, action: str, message) -> str:
        return "change_verdict" if action in ("create", "change") else "delete_verdict"
