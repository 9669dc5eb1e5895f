"""Encryption at rest for secret values: Fernet (AES-128-CBC + HMAC-SHA256), key in the data dir."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet

__all__ = ["SecretBox"]


class SecretBox:
    """Encrypts and decrypts secret values with the workspace key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """Load the key at `path`, creating it (mode 0600) on first start."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, value: bytes) -> bytes:
        """Ciphertext of `value`."""
        return self._fernet.encrypt(value)

    def decrypt(self, token: bytes) -> bytes:
        """Plaintext of a value this box encrypted."""
        return self._fernet.decrypt(token)
