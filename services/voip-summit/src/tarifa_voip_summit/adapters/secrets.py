"""Encryption at rest of the Summit access password (Fernet: AES-CBC with an HMAC, from `cryptography`)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class PasswordBox:
    """Seals and opens secrets with the service's key; the plain text never reaches a table or a log."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as error:
            raise ValueError("the voip-summit secret key must be a Fernet key (urlsafe base64 of 32 bytes)") from error

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise ValueError("the stored password does not open with this key (was the key rotated?)") from error
