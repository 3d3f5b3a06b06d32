"""Admin pages for sites, locations and devices (``/manage/``), without the Django admin.

Locations are placed by clicking on the map or on the site's floor plan. Registering a device or
rotating its token shows the token once (only its hash is stored), on a page of its own after a
redirect (POST-redirect-GET): the token waits in the admin's session until that page takes it,
so reloading the page neither registers nor rotates again and shows the token no more; revoke
and disable close a live stream at once (the save signal of ``devices.services``). Floor-plan
images are served to operators too, for the live map.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.static import serve

from accounts.audit import Actor
from accounts.permissions import admin_required, operator_required

from . import services
from .map_data import map_settings, site_dict
from .models import Device, Location, Site
from .positions import location_latlng, valid_bounds
from .time_zones import default_time_zone, zone_names


class SiteForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=lambda: [(name, name) for name in zone_names()],
        initial=default_time_zone,
        help_text="The site's local time: its alerts' times are shown in this zone",
    )
    floor_plan_bounds = forms.JSONField(
        required=False,
        widget=forms.HiddenInput,  # set on the map: two corners to drag (alerts/place.js)
        help_text="Where the floor plan lies on the map: [[south, west], [north, east]]",
    )

    class Meta:
        model = Site
        fields = [
            "name",
            "address",
            "time_zone",
            "sensitivity",
            "latitude",
            "longitude",
            "floor_plan",
            "floor_plan_bounds",
        ]
        widgets = {"address": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if data is not None and not data.get("time_zone"):  # a form without it keeps the zone
            self.data = data.copy()
            self.data["time_zone"] = self.instance.time_zone or default_time_zone()

    def clean_floor_plan_bounds(self):
        bounds = self.cleaned_data.get("floor_plan_bounds")
        if bounds in (None, "", []):
            return None
        if not valid_bounds(bounds):
            raise forms.ValidationError("use [[south, west], [north, east]] with north > south")
        return [[float(v) for v in corner] for corner in bounds]


class LocationForm(forms.ModelForm):
    class Meta:
        model = Location
        fields = ["site", "name", "latitude", "longitude", "x", "y"]
        widgets = {
            name: forms.NumberInput(attrs={"step": "any"})
            for name in ("latitude", "longitude", "x", "y")
        }

    def clean(self):
        data = super().clean()
        for name in ("x", "y"):
            value = data.get(name)
            if value is not None and not 0.0 <= value <= 1.0:
                self.add_error(name, "a fraction of the floor plan, 0..1")
        return data


class DeviceForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = ["location", "name", "enabled", "token_expires"]
        widgets = {"token_expires": forms.DateTimeInput(attrs={"type": "datetime-local"})}


class DeviceEditForm(forms.ModelForm):
    """Rename or move a device (its token and enabled state have their own actions)."""

    class Meta:
        model = Device
        fields = ["location", "name", "sensitivity"]
        help_texts = {
            "location": "Moving a device moves its marker; its past alerts keep the "
            "place they happened at."
        }


@admin_required
def manage_home(request):
    return render(
        request,
        "devices/manage/home.html",
        {
            "sites": Site.objects.prefetch_related("locations__devices"),
            "devices": Device.objects.select_related("location__site"),
        },
    )


@admin_required
def site_edit(request, site_id: int | None = None):
    site = get_object_or_404(Site, pk=site_id) if site_id else None
    form = SiteForm(request.POST or None, request.FILES or None, instance=site)
    if request.method == "POST" and form.is_valid():
        site = services.save_audited(form, Actor.of_request(request))
        messages.success(request, f"Saved site {site.name}.")
        return redirect("devices:manage")
    return render(
        request,
        "devices/manage/site_form.html",
        {
            "form": form,
            "site": site,
            "data": {
                **map_settings(),
                "site": site and site_dict(site),
                "plan_url": reverse("devices:floor-plan", args=[site.pk])
                if site and site.floor_plan
                else None,
            },
        },
    )


@admin_required
def location_edit(request, location_id: int | None = None):
    location = get_object_or_404(Location, pk=location_id) if location_id else None
    initial = {"site": request.GET.get("site")} if location is None else None
    form = LocationForm(request.POST or None, instance=location, initial=initial)
    if request.method == "POST" and form.is_valid():
        location = services.save_audited(form, Actor.of_request(request))
        messages.success(request, f"Saved location {location}.")
        return redirect("devices:manage")
    sites = {s.pk: site_dict(s) for s in Site.objects.all()}
    others = [
        {"name": str(loc), "latlng": location_latlng(loc, loc.site)}
        for loc in Location.objects.select_related("site")
        if location is None or loc.pk != location.pk
    ]
    return render(
        request,
        "devices/manage/location_form.html",
        {
            "form": form,
            "location": location,
            "data": {**map_settings(), "sites": sites, "others": others},
        },
    )


@admin_required
def device_new(request):
    form = DeviceForm(request.POST or None, initial={"location": request.GET.get("location")})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            device = form.save()
            response = show_token_once(request, device, action="create")
        return response
    return render(request, "devices/manage/device_new.html", {"form": form})


def _token_key(device_id: int) -> str:
    return f"devices:new-token:{device_id}"


def show_token_once(request, device: Device, action: str = "rotate_token"):
    """Issue a token (audited as ``action``) and redirect to the page that shows it (once)."""
    actor = Actor.of_request(request)
    token = services.issue_token(device, device.token_expires, actor, action=action)
    request.session[_token_key(device.pk)] = token
    return redirect("devices:device-token", device_id=device.pk)


@never_cache
@admin_required
def device_token(request, device_id: int):
    """The token just issued, taken out of the session: a reload finds none."""
    device = get_object_or_404(Device, pk=device_id)
    token = request.session.pop(_token_key(device.pk), None)
    return render(request, "devices/manage/token.html", {"device": device, "token": token})


DEVICE_ACTIONS = ("rotate", "revoke", "disable", "enable")


@admin_required
def device_detail(request, device_id: int):
    device = get_object_or_404(Device.objects.select_related("location__site"), pk=device_id)
    if request.method == "POST":
        action = request.POST.get("action")
        actor = Actor.of_request(request)
        if action not in DEVICE_ACTIONS:
            messages.error(request, f"unknown action {action!r}")
        elif action == "rotate":
            return show_token_once(request, device)
        elif action == "revoke":
            services.revoke_token(device, actor)
            messages.success(request, f"Revoked the token of {device.name}.")
        else:
            services.set_enabled(device, action == "enable", actor)
            messages.success(request, f"{device.name} is {action}d.")
        return redirect("devices:device", device_id=device.pk)
    recent = device.alerts.all()[:20]
    return render(
        request, "devices/manage/device_detail.html", {"device": device, "alerts": recent}
    )


@admin_required
def device_edit(request, device_id: int):
    device = get_object_or_404(Device.objects.select_related("location__site"), pk=device_id)
    form = DeviceEditForm(request.POST or None, instance=device)
    if request.method == "POST" and form.is_valid():
        device = services.save_audited(form, Actor.of_request(request))
        messages.success(request, f"Saved device {device.name} at {device.location}.")
        return redirect("devices:device", device_id=device.pk)
    return render(request, "devices/manage/device_edit.html", {"form": form, "device": device})


DELETABLE = {"site": Site, "location": Location, "device": Device}
CONFIRM = "delete"


@admin_required
def delete(request, kind: str, object_id: int):
    """Delete a site, location or device: GET shows what would go (or what stands in the way),
    POST from that page (``confirm=delete``) deletes, audited, then back to ``/manage/``."""
    model = DELETABLE[kind]
    obj = get_object_or_404(model, pk=object_id)
    deletion = services.deletion_of(obj)
    if request.method == "POST":
        if request.POST.get("confirm") != CONFIRM:
            messages.error(request, "Nothing deleted: confirm on this page.")
            return redirect(request.path)
        name = str(obj)
        try:
            services.delete_audited(obj, Actor.of_request(request))
        except services.DeleteRefused as refused:
            messages.error(request, f"{name} was not deleted: {refused} must go first.")
            return redirect(request.path)
        messages.success(request, f"Deleted {model._meta.verbose_name} {name}.")
        return redirect("devices:manage")
    return render(
        request,
        "devices/manage/confirm_delete.html",
        {"obj": obj, "kind": model._meta.verbose_name, "deletion": deletion, "confirm": CONFIRM},
    )


@operator_required
def floor_plan(request, site_id: int):
    site = get_object_or_404(Site, pk=site_id)
    if not site.floor_plan:
        raise Http404("this site has no floor plan")
    response = serve(request, site.floor_plan.name, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "private, max-age=3600"
    return response
