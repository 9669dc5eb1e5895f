"""Secret scopes, secrets and their ACLs; values encrypted at rest and never listed.

Invariants: a value is stored only as ciphertext (`SecretBox`, the data dir's key) and leaves
only through `get_secret` to a caller with READ on its scope, never in a list, an error or a
log; admins hold MANAGE on every scope; the creator of a scope gets MANAGE on it.
"""

from kiln.secrets import acls, scopes, values
from kiln.secrets.crypto import SecretBox
from kiln.secrets.permissions import Caller, Permission, parse_permission

__all__ = ["Caller", "Permission", "SecretBox", "acls", "parse_permission", "scopes", "values"]
