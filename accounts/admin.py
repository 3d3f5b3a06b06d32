"""``/admin/``: users and groups with an audit trail, and the audit trail itself (read-only)."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from .admin_audit import AuditedAdmin
from .models import AuditEvent
from .permissions import is_admin


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    pass


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Admins read the trail; nobody adds, edits or deletes an event here."""

    list_display = [
        "time",
        "actor_name",
        "actor_kind",
        "action",
        "object_type",
        "object_id",
        "object_name",
        "source_ip",
    ]
    list_filter = ["action", "object_type", "actor_kind"]
    search_fields = ["actor_name", "object_name", "object_id"]
    date_hierarchy = "time"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_view_permission(self, request, obj=None) -> bool:
        return is_admin(request.user)

    def has_module_permission(self, request) -> bool:
        return is_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
