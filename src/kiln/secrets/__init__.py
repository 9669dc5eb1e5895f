"""Secret scopes, secrets and their ACLs; values encrypted at rest and never listed.

Invariants: a value leaves only through `get_secret` to a principal with READ on its scope.
"""

from kiln.secrets.crypto import SecretBox

__all__ = ["SecretBox"]
