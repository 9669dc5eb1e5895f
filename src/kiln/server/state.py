"""What the running server holds: built once at start, reached by routes through `deps`."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.compute import Compute
from kiln.dbfs import DbfsStore
from kiln.identity.auth_cache import PrincipalCache
from kiln.jobs import Jobs
from kiln.secrets import SecretBox
from kiln.settings import KilnSettings
from kiln.store import Database

__all__ = ["AppState"]


@dataclass
class AppState:
    """The settings tree and the long-lived resources built from it."""

    settings: KilnSettings
    db: Database
    dbfs: DbfsStore
    secret_box: SecretBox
    principals: PrincipalCache
    compute: Compute
    jobs: Jobs
