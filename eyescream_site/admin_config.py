"""The admin app with this project's site (``admin_site.EyescreamAdminSite``), loaded lazily."""

from django.contrib.admin.apps import AdminConfig


class EyescreamAdminConfig(AdminConfig):
    default_site = "eyescream_site.admin_site.EyescreamAdminSite"
