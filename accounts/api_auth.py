"""API tokens without a table: a signed ``{user id, password tag}``, sent as ``Token <token>``.

``manage.py api_token USERNAME`` prints one. Changing the user's password (or deactivating the
user, or changing SECRET_KEY) revokes every token issued before.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed

SALT = "eyescream.api-token"
KEYWORD = "Token"


def _password_tag(user) -> str:
    return salted_hmac(SALT, f"{user.pk}:{user.password}").hexdigest()[:20]


def make_token(user) -> str:
    return signing.dumps({"u": user.pk, "p": _password_tag(user)}, salt=SALT)


def user_for_token(token: str):
    """The active user a token belongs to, or ``AuthenticationFailed`` saying why not."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise AuthenticationFailed("invalid API token") from None
    user = get_user_model().objects.filter(pk=data.get("u")).first()
    if user is None or not user.is_active:
        raise AuthenticationFailed("the user of this API token is gone or inactive")
    if not constant_time_compare(_password_tag(user), str(data.get("p", ""))):
        raise AuthenticationFailed("this API token was revoked (password changed)")
    return user


class SignedTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("use the header 'Authorization: Token <token>'")
        return user_for_token(parts[1].decode("latin-1")), None

    def authenticate_header(self, request) -> str:
        return KEYWORD


class SignedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.SignedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "'Token <token>' (manage.py api_token USERNAME)",
        }


# How every API view authenticates: a signed token, else the browser's session.
API_AUTHENTICATION = [SignedTokenAuthentication, SessionAuthentication]
