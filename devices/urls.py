from django.urls import path

from . import pages, views

app_name = "devices"

urlpatterns = [
    path("device/", views.device_page, name="device-page"),
    path("manage/", pages.manage_home, name="manage"),
    path("manage/sites/new/", pages.site_edit, name="site-new"),
    path("manage/sites/<int:site_id>/", pages.site_edit, name="site"),
    path("manage/locations/new/", pages.location_edit, name="location-new"),
    path("manage/locations/<int:location_id>/", pages.location_edit, name="location"),
    path("manage/devices/new/", pages.device_new, name="device-new"),
    path("manage/devices/<int:device_id>/", pages.device_detail, name="device"),
    path("manage/devices/<int:device_id>/token/", pages.device_token, name="device-token"),
    path("manage/devices/<int:device_id>/edit/", pages.device_edit, name="device-edit"),
    path(
        "manage/sites/<int:object_id>/delete/",
        pages.delete,
        {"kind": "site"},
        name="site-delete",
    ),
    path(
        "manage/locations/<int:object_id>/delete/",
        pages.delete,
        {"kind": "location"},
        name="location-delete",
    ),
    path(
        "manage/devices/<int:object_id>/delete/",
        pages.delete,
        {"kind": "device"},
        name="device-delete",
    ),
    path("sites/<int:site_id>/floor-plan/", pages.floor_plan, name="floor-plan"),
]
