"""`dbutils.secrets`: secret values through the Secrets API, as the context's user.

Every value fetched is registered with the context's `Redactor` before it is returned, so it
prints as `[REDACTED]` in any output of the context from then on.
"""

from __future__ import annotations

import base64
import builtins
from collections import namedtuple

from kiln.driver.dbutils.api import ApiClient
from kiln.driver.dbutils.errors import ApiError, ExecutionError
from kiln.driver.dbutils.help import Helpful
from kiln.driver.dbutils.redaction import Redactor

__all__ = ["SecretMetadata", "SecretScope", "SecretsUtils"]


class SecretScope(namedtuple("SecretScope", ["name"])):
    """One scope of `dbutils.secrets.listScopes`."""

    __slots__ = ()

    def getName(self) -> str:
        """The scope's name."""
        return str(self.name)


class SecretMetadata(namedtuple("SecretMetadata", ["key"])):
    """One secret of `dbutils.secrets.list` (never its value)."""

    __slots__ = ()


def _check(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ExecutionError(f"java.lang.IllegalArgumentException: {name} must be a non-empty str.")
    return value


class SecretsUtils(Helpful):
    """Reads secrets; every value read is redacted from the context's outputs."""

    _TITLE = "dbutils.secrets"
    _INTRO = "utilities for leveraging secrets within notebooks (values print as [REDACTED])."
    _HELP = ("get", "getBytes", "list", "listScopes")

    def __init__(self, api: ApiClient, redactor: Redactor) -> None:
        self._api = api
        self._redactor = redactor

    def getBytes(self, scope: str, key: str) -> bytes:
        """Gets the bytes representation of a secret value for the specified scope and key."""
        query = {"scope": _check("scope", scope), "key": _check("key", key)}
        try:
            body = self._api.get("/api/2.0/secrets/get", query)
        except ApiError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ExecutionError(f"java.lang.IllegalArgumentException: {exc.message}") from None
            raise
        value = base64.b64decode(str(body.get("value") or ""))
        self._redactor.add_bytes(value)
        return value

    def get(self, scope: str, key: str) -> str:
        """Gets the string representation of a secret value for the specified scope and key."""
        value = self.getBytes(scope, key)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ExecutionError(
                f"java.lang.IllegalArgumentException: Secret {scope}/{key} is not UTF-8 text; "
                "use getBytes."
            ) from None

    def list(self, scope: str) -> builtins.list[SecretMetadata]:
        """Lists the metadata for secrets within the specified scope."""
        body = self._api.get("/api/2.0/secrets/list", {"scope": _check("scope", scope)})
        return [SecretMetadata(s["key"]) for s in body.get("secrets") or []]

    def listScopes(self) -> builtins.list[SecretScope]:
        """Lists the available scopes."""
        body = self._api.get("/api/2.0/secrets/scopes/list")
        return [SecretScope(s["name"]) for s in body.get("scopes") or []]
