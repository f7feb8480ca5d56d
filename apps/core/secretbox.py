"""Secrets at rest: agent secrets encrypted (Fernet, keyed by OZWEB_SECRETS_KEY or SECRET_KEY),
bearer tokens (run tokens, invitation links) kept only as their hash."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet
from django.conf import settings


@cache
def _fernet() -> Fernet:
    material = settings.OZWEB_SECRETS_KEY or settings.SECRET_KEY
    key = base64.urlsafe_b64encode(hashlib.sha256(f"ozweb-secrets:{material}".encode()).digest())
    return Fernet(key)


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def token_hash(raw: str) -> str:
    """What is stored of a bearer token: its SHA-256, hex (tokens are long random strings, so
    no salt or slow hash is needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()
