"""The browser device page: a phone or laptop becomes a microphone with a device token."""

from django.shortcuts import render

from .protocol import PATH


def device_page(request):
    return render(request, "devices/device_page.html", {"ws_path": PATH})
