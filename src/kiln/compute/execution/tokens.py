"""The token each execution context acts with: minted for the calling user when the context is
created (dbutils inside it calls Kiln's API as that user), revoked when it is destroyed.

A context that ends any other way (its cluster stopped) leaves its token behind; `sweep` drops
every context token whose context is gone. The tokens table holds them like any other token,
named by their comment, so no table of Kiln's own is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.execution.access import RUNNABLE_STATES
from kiln.identity import Principal
from kiln.identity.tokens import IssuedToken, create_token
from kiln.store.models import Cluster, Token, now_utc

__all__ = ["COMMENT_PREFIX", "mint_context_token", "revoke_context_token", "sweep_context_tokens"]

COMMENT_PREFIX = "Kiln execution context "
_COMMENT = re.compile(r"^Kiln execution context (\S+) on cluster (\S+)$")
# A token younger than this may belong to a context being created right now.
_GRACE = timedelta(minutes=5)


async def mint_context_token(
    session: AsyncSession, principal: Principal, cluster_id: str, context_id: str
) -> IssuedToken:
    """A new token of the principal for one context."""
    return await create_token(
        session, principal.user_id, comment=f"{COMMENT_PREFIX}{context_id} on cluster {cluster_id}"
    )


async def revoke_context_token(session: AsyncSession, token_id: str) -> None:
    """Revoke a context's token (nothing if it is gone already)."""
    if not token_id:
        return
    row = await session.scalar(select(Token).where(Token.token_id == token_id))
    if row is not None and (row.comment or "").startswith(COMMENT_PREFIX):
        await session.delete(row)


async def sweep_context_tokens(
    session: AsyncSession, cluster_id: str, live_token_ids: Iterable[str]
) -> int:
    """Revoke the tokens of contexts that no longer exist: those of `cluster_id` whose token is
    not live, and those of clusters that no longer run. How many were revoked."""
    live = set(live_token_ids)
    rows = (
        await session.scalars(
            select(Token).where(
                Token.comment.startswith(COMMENT_PREFIX), Token.created_at < now_utc() - _GRACE
            )
        )
    ).all()
    states: dict[str, str | None] = {}
    revoked = 0
    for row in rows:
        match = _COMMENT.match(row.comment or "")
        if match is None:
            continue
        owner_cluster = match.group(2)
        if owner_cluster == cluster_id:
            gone = row.token_id not in live
        else:
            if owner_cluster not in states:
                states[owner_cluster] = await session.scalar(
                    select(Cluster.state).where(Cluster.cluster_id == owner_cluster)
                )
            gone = states[owner_cluster] not in RUNNABLE_STATES
        if gone:
            await session.delete(row)
            revoked += 1
    return revoked
