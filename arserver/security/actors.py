"""Who did something, as records of people's acts store it (an alert's ``acknowledged_by``,
an inspection's ``created_by`` and history, a comment's ``author``).

* one of our staff tokens: its name (people's tokens are named after them or their device,
  and the export and erasure of ``name:TEXT`` find them by it);
* a resident's token (role ``resident``): ``token:<id>``, since every resident token of a round
  has the same kind of name and the person is known only by the token;
* an OpenID Connect caller: the stable subject id ``oidc:<issuer tag>:<subject>``, never the
  display name of the JWT.
"""

from __future__ import annotations

from arserver.domain import TOKEN_ACTOR_PREFIX
from arserver.security.oidc import ID_PREFIX as OIDC_PREFIX
from arserver.security.oidc import subject_of
from arserver.security.tokens import TokenRecord


def person_of(caller: TokenRecord) -> str:
    """What a record stores as the person who acted (see the module's table)."""
    if caller.id.startswith(OIDC_PREFIX):
        return subject_of(caller)
    if caller.role == "resident":
        return TOKEN_ACTOR_PREFIX + caller.id
    return caller.name
