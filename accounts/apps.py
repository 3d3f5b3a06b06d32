from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

# What the Admins role may do in /admin/: everything on sites, locations and devices; view,
# change and delete alerts and reviews (Operators work in the dashboard, not in /admin/);
# everything on notification destinations and escalation policies.
ADMIN_PERMISSIONS = {
    "devices": ("add", "change", "delete", "view"),
    "alerts": ("change", "delete", "view"),
    "notifications": ("add", "change", "delete", "view"),
}


def grant_admin_permissions(apps=global_apps, using="default", **kwargs) -> None:
    """Give the ``Admins`` group its model permissions (idempotent; after every migrate)."""
    Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    group = Group.objects.using(using).filter(name="Admins").first()
    if group is None:
        return
    wanted = Permission.objects.using(using).none()
    for app_label, actions in ADMIN_PERMISSIONS.items():
        wanted |= Permission.objects.using(using).filter(
            content_type__app_label=app_label,
            codename__regex=rf"^({'|'.join(actions)})_",
        )
    group.permissions.add(*wanted)


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        post_migrate.connect(
            grant_admin_permissions, sender=self, dispatch_uid="accounts-admin-permissions"
        )
