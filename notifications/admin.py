"""``/admin/`` pages: destinations (with their last error and recent deliveries), deliveries
(read-only), escalation policies."""

from django import forms
from django.contrib import admin

from .events import EVENT_TYPES
from .models import Delivery, Destination, EscalationPolicy

RECENT_DELIVERIES = 20


class DestinationForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=EVENT_TYPES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Destination
        fields = [
            "site",
            "name",
            "kind",
            "enabled",
            "events",
            "url",
            "secret",
            "recipients",
            "topic_prefix",
            "username",
            "password",
            "ca_file",
            "tls_insecure",
        ]
        widgets = {
            "secret": forms.PasswordInput(render_value=True),
            "password": forms.PasswordInput(render_value=True),
        }


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("created", "event", "message_id", "attempt", "status", "response_code", "error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"deliveries (the latest {RECENT_DELIVERIES})"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        latest = queryset.order_by("-created", "-id").values_list("pk", flat=True)
        return queryset.filter(pk__in=list(latest[:RECENT_DELIVERIES]))

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    list_display = ("name", "site", "kind", "enabled", "last_status", "last_error_at")
    list_filter = ("kind", "enabled", "site", "last_status")
    search_fields = ("name", "url", "recipients")
    readonly_fields = ("last_status", "last_error", "last_error_at", "last_success_at", "created")
    fieldsets = (
        (None, {"fields": ("site", "name", "kind", "enabled", "events")}),
        ("Webhook", {"fields": ("url", "secret")}),
        ("E-mail", {"fields": ("recipients",)}),
        (
            "MQTT (the broker URL goes in URL: mqtt://host:1883 or mqtts://host:8883)",
            {"fields": ("topic_prefix", "username", "password", "ca_file", "tls_insecure")},
        ),
        (
            "Last attempt",
            {"fields": ("last_status", "last_error", "last_error_at", "last_success_at")},
        ),
    )
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created",
        "destination",
        "event",
        "alert",
        "attempt",
        "status",
        "response_code",
        "error",
    )
    list_filter = ("status", "event", "destination__kind", "destination__site")
    search_fields = ("message_id", "error", "destination__name")
    list_select_related = ("destination", "alert")
    date_hierarchy = "created"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ("site", "after_minutes", "enabled", "created")
