"""Re-export of `kiln.principal`, the acting user every domain package shares."""

from kiln.principal import ADMINS_GROUP, USERS_GROUP, Principal, require_admin

__all__ = ["ADMINS_GROUP", "USERS_GROUP", "Principal", "require_admin"]
