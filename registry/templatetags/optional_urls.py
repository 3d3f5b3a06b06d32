"""``{% optional_url 'feedback:retrain' as url %}``: the URL, or "" where no such route exists
(the models page works before the retraining app is installed)."""

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.simple_tag
def optional_url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""
