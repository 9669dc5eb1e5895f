"""Opaque `page_token` values for Databricks-style pagination."""

from __future__ import annotations

import base64
import json

from kiln.errors import InvalidParameterValue

__all__ = ["decode_page_token", "encode_page_token"]


def encode_page_token(offset: int) -> str:
    """An opaque token naming the next page's first item."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_page_token(token: str | None) -> int:
    """The offset a token names; 0 for no token. A forged token is a 400, not a crash."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded))["o"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterValue(f"Invalid page_token: {token!r}") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page_token: {token!r}")
    return offset
