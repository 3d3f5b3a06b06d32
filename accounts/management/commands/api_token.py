"""``manage.py api_token USERNAME``: print an API token for that user (Operators or Admins)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.api_auth import make_token
from accounts.permissions import is_operator


class Command(BaseCommand):
    help = "Print an API token (header 'Authorization: Token <token>') for an operator or admin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not is_operator(user):
            raise CommandError(f"{username} is neither in Operators nor in Admins")
        self.stdout.write(make_token(user))
