"""The ``/admin/`` site, open to the Admins role as well as to staff.

Admins (members of the ``Admins`` group, see ``alerts.permissions``) register sites, locations
and devices and rotate or revoke device tokens there; Django's stock site lets in only
``is_staff`` users. What each admin may do on a model still comes from model permissions, which
the ``Admins`` group is granted after every migrate (``alerts.apps``).
"""

from django.contrib import admin

from alerts.permissions import is_admin


class EyescreamAdminSite(admin.AdminSite):
    site_header = "Eye-SCREAM administration"

    def has_permission(self, request) -> bool:
        user = request.user
        return user.is_active and (user.is_staff or is_admin(user))
