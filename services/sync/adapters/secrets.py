"""Store credentials and webhook secrets are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).
MultiFernet takes several keys, newest first, so keys can be rotated without re-encrypting at once."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr


class SecretBox:
    def __init__(self, keys: SecretStr) -> None:
        self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.get_secret_value().split(",") if k.strip()])
        # Every webhook opens its store's secret: a token always opens to the same text, so keep the answers.
        self._open = lru_cache(maxsize=4096)(self._decrypt)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        return self._open(token)

    def _decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()
