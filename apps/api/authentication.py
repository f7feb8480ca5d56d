"""The REST API's token authentication: DRF's, with refused tokens counted per address.

DRF's throttles run after authentication, so a request with a bad token never reaches them;
the count is kept here instead (apps.core.throttling). Once an address has used up
OZWEB_THROTTLE_AUTH_FAILURES, every token it presents, good or bad, gets 429 with Retry-After
until the window ends.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import router
from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from apps.core.secretbox import token_hash
from apps.core.throttling import auth_failed, auth_refused_wait, request_address

# How long a checked token's user is reused without asking the database (each request paid a
# joined query for it). Deleting a token or saving its user (deactivation, a new password)
# forgets it at once in this process; another server process may still accept it for at most
# this long.
TOKEN_CACHE_SECONDS = 5.0
TOKEN_CACHE_MAX = 2000

# key hash → (when checked, user id, the user's field values, the token's field values)
_checked: dict[str, tuple[float, int, tuple[Any, ...], tuple[Any, ...]]] = {}
_checked_lock = threading.Lock()


def _values(instance: Model) -> tuple[Any, ...]:
    return tuple(getattr(instance, f.attname) for f in instance._meta.concrete_fields)


def _instance(model: type[Model], values: tuple[Any, ...]) -> Any:
    names = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(router.db_for_read(model), names, list(values))


def forget_tokens(*, user_id: int | None = None, key: str | None = None) -> None:
    """Drop checked tokens from the cache: one token, a user's, or (neither) all."""
    with _checked_lock:
        if key is not None:
            _checked.pop(token_hash(key), None)
        elif user_id is not None:
            for hashed in [h for h, hit in _checked.items() if hit[1] == user_id]:
                del _checked[hashed]
        else:
            _checked.clear()


def _token_deleted(sender: type[Model], instance: Token, **kwargs: Any) -> None:
    forget_tokens(key=instance.key)


def _user_changed(sender: type[Model], instance: User, **kwargs: Any) -> None:
    forget_tokens(user_id=instance.pk)


post_delete.connect(_token_deleted, sender=Token, dispatch_uid="api-token-cache-token")
post_save.connect(_user_changed, sender=get_user_model(), dispatch_uid="api-token-cache-user")
post_delete.connect(_user_changed, sender=get_user_model(), dispatch_uid="api-token-cache-gone")


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        hashed = token_hash(key)
        now = time.monotonic()
        hit = _checked.get(hashed)
        if hit is not None and now - hit[0] < TOKEN_CACHE_SECONDS:
            user = _instance(get_user_model(), hit[2])
            token = _instance(Token, hit[3])
            token.user = user
            return user, token
        user, token = super().authenticate_credentials(key)
        with _checked_lock:
            if len(_checked) >= TOKEN_CACHE_MAX:
                _checked.clear()
            _checked[hashed] = (now, user.pk, _values(user), _values(token))
        return user, token

    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # no token: another authentication's turn
        address = request_address(request._request)
        try:
            authenticated = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            wait = auth_failed(address)
            if wait is not None:
                raise exceptions.Throttled(wait) from None
            raise
        wait = auth_refused_wait(address)
        if wait is not None:
            raise exceptions.Throttled(wait)
        return authenticated
