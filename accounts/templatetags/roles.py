"""Template filters for the roles: ``{% load roles %}{% if user|is_admin %}`` shows a link only
to those who may open it."""

from django import template

from accounts import permissions

register = template.Library()


@register.filter
def is_admin(user) -> bool:
    return permissions.is_admin(user)


@register.filter
def is_operator(user) -> bool:
    return permissions.is_operator(user)
