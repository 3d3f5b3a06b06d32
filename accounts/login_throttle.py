"""Login throttling: after repeated wrong passwords, a user name (or an address) is locked out.

``LOCKOUT_FAILURES`` failed logins for one user name within ``LOCKOUT_S`` lock that user name
for ``LOCKOUT_S``, and ``ADDRESS_FAILURES`` from one client address lock the address: during a
lock-out even the right password is refused, with a message saying so and for how long.
Failures are counted in Django's cache (the process's memory in embedded mode, Redis in the
scaled mode, shared by every process). The operators' login page and ``/admin/``'s both use it.
"""

from __future__ import annotations

import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache


def _limits() -> tuple[int, int, float]:
    return (
        int(getattr(settings, "EYESCREAM_LOGIN_FAILURES", 5)),
        int(getattr(settings, "EYESCREAM_LOGIN_ADDRESS_FAILURES", 30)),
        float(getattr(settings, "EYESCREAM_LOGIN_LOCKOUT_S", 900)),
    )


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:{kind}:{digest}"


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _keys(username: str, request) -> list[tuple[str, int]]:
    user_limit, address_limit, _ = _limits()
    return [
        (_key("user", username or ""), user_limit),
        (_key("address", client_address(request)), address_limit),
    ]


def locked_for_s(username: str, request, now: float | None = None) -> float:
    """Seconds until this user name and address may try again (0: not locked)."""
    now = time.time() if now is None else now
    _, _, lockout_s = _limits()
    wait = 0.0
    for key, limit in _keys(username, request):
        failures = [t for t in cache.get(key, []) if now - t < lockout_s]
        if len(failures) >= limit:
            wait = max(wait, failures[-limit] + lockout_s - now)
    return wait


def record_failure(username: str, request, now: float | None = None) -> None:
    now = time.time() if now is None else now
    _, _, lockout_s = _limits()
    for key, limit in _keys(username, request):
        recent = [t for t in cache.get(key, []) if now - t < lockout_s][-(limit - 1) :]
        cache.set(key, [*recent, now], timeout=math.ceil(lockout_s))


def clear(username: str) -> None:
    cache.delete(_key("user", username or ""))


class ThrottledLoginMixin:
    """For an ``AuthenticationForm``: refuse while locked out, count each failure."""

    def clean(self):
        username = self.data.get("username", "")
        wait = locked_for_s(username, self.request)
        if wait > 0:
            raise forms.ValidationError(
                "Too many failed logins. Try again in %(minutes)d minute(s).",
                code="locked_out",
                params={"minutes": math.ceil(wait / 60)},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            record_failure(username, self.request)
            raise
        clear(username)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass
