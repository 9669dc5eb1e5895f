"""Identity: users, groups, personal access tokens and the principal of each request.

Invariants: a request's acting user comes only from its token; tokens are stored as hashes
and compared in constant time; users and groups share one id space.
"""

from kiln.identity.bootstrap import bootstrap_admin, write_secret_file
from kiln.identity.principal import ADMINS_GROUP, USERS_GROUP, Principal, require_admin

__all__ = [
    "ADMINS_GROUP",
    "USERS_GROUP",
    "Principal",
    "bootstrap_admin",
    "require_admin",
    "write_secret_file",
]
