"""Roles: ``Admins`` (sites, locations, devices, tokens, models) and ``Operators`` (view, review).

Membership of the Django groups decides; superusers count as admins and admins as operators.
Views use ``operator_required`` / ``admin_required`` (anonymous -> login page, logged in without
the role -> 403); the API ``IsOperator`` / ``IsAdmin``; the dashboard WebSocket ``is_operator``.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

ADMINS = "Admins"
OPERATORS = "Operators"


def _groups(user) -> set[str]:
    cached = getattr(user, "_eyescream_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._eyescream_groups = cached
    return cached


def is_admin(user) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or ADMINS in _groups(user)


def is_operator(user) -> bool:
    """Operators may watch and review; every admin is an operator too."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return is_admin(user) or OPERATORS in _groups(user)


def _role_required(check, role: str):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not check(request.user):
                raise PermissionDenied(f"this page is for {role}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


operator_required = _role_required(is_operator, "operators")
admin_required = _role_required(is_admin, "admins")


class IsOperator(BasePermission):
    message = "operators only"

    def has_permission(self, request, view) -> bool:
        return is_operator(request.user)


class IsAdmin(BasePermission):
    message = "admins only"

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class OperatorReadsAdminWrites(BasePermission):
    """Safe methods for operators; anything else for admins."""

    message = "operators may read; changes are for admins"

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return is_operator(request.user)
        return is_admin(request.user)
