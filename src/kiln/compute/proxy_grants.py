"""Sign-in for the Spark UI opened in a browser tab, where no token header can travel.

A caller who may attach to a cluster gets a grant: an HMAC-signed token, valid 60 s and once,
bound to the cluster, the UI port and the user. The driver proxy trades it for a cookie bound
the same way, valid one hour, that the browser sends to that proxy path only. The signing key
lives in the server's memory: a restart ends every grant and cookie, which only costs a new
click on the link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.clusters import proxy_target
from kiln.compute.service import Compute
from kiln.errors import InvalidParameterValue, InvalidState, Unauthenticated
from kiln.identity import Principal
from kiln.identity.principal import ADMINS_GROUP
from kiln.identity.users import groups_of_user
from kiln.store.models import ClusterRuntime, User

__all__ = [
    "COOKIE",
    "COOKIE_SECONDS",
    "GRANT_PARAMETER",
    "GRANT_SECONDS",
    "Grant",
    "ProxySignIn",
    "cookie_path",
    "issue",
    "principal_of",
]

GRANT_PARAMETER = "kiln_grant"
COOKIE = "kiln_proxy"
GRANT_SECONDS = 60
COOKIE_SECONDS = 3600

_KEY = secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class Grant:
    """A granted Spark UI URL and when its grant expires (epoch seconds)."""

    url: str
    port: int
    expires_at: int


def cookie_path(compute: Compute, cluster_id: str, port: int) -> str:
    """The one proxy path a grant's cookie is sent to: the Spark UI's own prefix (its links and
    assets are under it, with the workspace id as the org)."""
    return f"{compute.proxy_base(cluster_id)}/{port}/"


def _sign(claims: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(_KEY, body, hashlib.sha256).digest()
    return (body + b"." + base64.urlsafe_b64encode(mac)).decode().replace("=", "")


def _verify(token: str, kind: str, cluster_id: str, port: int) -> dict[str, object] | None:
    """The claims of a valid, unexpired token of `kind` bound to this cluster and port."""
    body, _, mac = token.partition(".")
    try:
        raw_body = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        raw_mac = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except (ValueError, TypeError):
        return None
    expected = hmac.new(_KEY, base64.urlsafe_b64encode(raw_body), hashlib.sha256).digest()
    if not hmac.compare_digest(raw_mac, expected):
        return None
    claims = json.loads(raw_body)
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if (
        claims.get("kind") != kind
        or claims.get("cluster") != cluster_id
        or claims.get("port") != port
        or not isinstance(exp, int)
        or exp <= time.time()
        or not isinstance(claims.get("user"), int)
    ):
        return None
    return claims


async def issue(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    port: object = None,
) -> Grant:
    """A one-time, 60-second URL of a running cluster's UI port (default: its Spark UI) for a
    caller allowed to attach to the cluster."""
    if not isinstance(cluster_id, str) or not cluster_id:
        raise InvalidParameterValue("cluster_id is required.")
    if port is None:
        runtime = await session.get(ClusterRuntime, cluster_id)
        port = runtime.spark_ui_port if runtime is not None else None
        if port is None:
            # No Spark UI: the cluster is missing, not the caller's or not running; say which.
            await proxy_target(session, compute, principal, "0", cluster_id, 0)
            raise InvalidState(f"Cluster {cluster_id} has no Spark UI.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidParameterValue("port must be a TCP port number.")
    await proxy_target(session, compute, principal, "0", cluster_id, port)
    expires = int(time.time()) + GRANT_SECONDS
    token = _sign(
        {
            "kind": "grant",
            "cluster": cluster_id,
            "port": port,
            "user": principal.user_id,
            "exp": expires,
            "nonce": secrets.token_hex(8),
        }
    )
    url = f"{cookie_path(compute, cluster_id, port)}?{GRANT_PARAMETER}={token}"
    return Grant(url, port, expires)


class ProxySignIn:
    """Redeems grants (once each) and checks cookies for the driver proxy."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def redeem(self, token: str, cluster_id: str, port: int) -> tuple[int, str]:
        """(user id, cookie value) for a valid grant not redeemed before; 401 otherwise."""
        claims = _verify(token, "grant", cluster_id, port)
        now = int(time.time())
        self._used = {n: exp for n, exp in self._used.items() if exp > now}
        nonce = str(claims.get("nonce")) if claims is not None else ""
        if claims is None or nonce in self._used:
            raise Unauthenticated("The Spark UI link expired or was already used: open it again.")
        self._used[nonce] = int(str(claims["exp"]))
        user_id = int(str(claims["user"]))
        cookie = _sign(
            {
                "kind": "cookie",
                "cluster": cluster_id,
                "port": port,
                "user": user_id,
                "exp": now + COOKIE_SECONDS,
            }
        )
        return user_id, cookie

    def check_cookie(self, value: str, cluster_id: str, port: int) -> int | None:
        """The user id a valid cookie for this cluster and port names, else None."""
        claims = _verify(value, "cookie", cluster_id, port)
        return int(str(claims["user"])) if claims is not None else None


async def principal_of(session: AsyncSession, user_id: int) -> Principal:
    """The principal of an active user named by a grant or cookie; 401 if gone or inactive."""
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise Unauthenticated("The user of this Spark UI link is no longer active.")
    admin = any(g.display_name == ADMINS_GROUP for g in await groups_of_user(session, user_id))
    return Principal(user_id=user.id, user_name=user.user_name, is_admin=admin, token_id="")
