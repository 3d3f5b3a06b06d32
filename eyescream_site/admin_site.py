"""The ``/admin/`` site, open to the Admins role as well as to staff.

Admins (members of the ``Admins`` group, see ``accounts.permissions``) register sites, locations
and devices and rotate or revoke device tokens there; Django's stock site lets in only
``is_staff`` users. What each admin may do on a model still comes from model permissions, which
the ``Admins`` group is granted after every migrate (``alerts.apps``).
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from accounts.login_throttle import ThrottledLoginMixin
from accounts.permissions import is_admin


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """Staff or the Admins role; throttled like every login."""

    def confirm_login_allowed(self, user) -> None:
        if not is_admin(user):
            super().confirm_login_allowed(user)  # refuses a user who is not staff


class EyescreamAdminSite(admin.AdminSite):
    site_header = "Eye-SCREAM administration"
    login_form = AdminLoginForm

    def has_permission(self, request) -> bool:
        user = request.user
        return user.is_active and (user.is_staff or is_admin(user))
