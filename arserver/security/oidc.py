"""Staff sign-in: OpenID Connect bearer JWTs of the municipality's identity provider.

A JWT is accepted when all of this holds, and is then a
:class:`~arserver.security.tokens.TokenRecord` like one of our own tokens:

* it is at most :data:`MAX_JWT_CHARS` long and its header names ``alg`` RS256 or ES256 (never
  ``none``, never an HMAC algorithm: the issuer's public keys are no shared secrets) and a
  ``kid``, with no ``crit`` extensions;
* the issuer's JWKS (:class:`JwksCache`) has a signing key of that ``kid`` for that algorithm
  (RSA of at least 2048 bits, EC P-256), and the signature verifies with it;
* ``iss`` is the configured issuer, ``aud`` holds the configured audience, ``exp`` and ``sub``
  are present, and ``exp``, ``nbf`` and ``iat`` hold within the leeway (clock skew, at most
  :data:`MAX_LEEWAY_S`);
* the role claim (:class:`RoleMapping`) maps to at least one arserver role.

The record's id is ``oidc:<issuer tag>:<subject>:<exp>`` (see :func:`record_id`): it names who
signed in, never the token, cannot collide with our token ids (hex), and carries the JWT's
expiry, so that the live token watch closes the connections of a JWT when it expires (plus the
leeway), whichever server process holds them and without a table of JWTs. Its ``name`` is the
``preferred_username`` or ``name`` claim, ``expires_at`` is ``exp``, ``scope`` is None.

Verification and JWKS fetching block (network): they run in worker threads, never on the event
loop. Without an issuer configured nothing here is used (:func:`verifier_from_settings` gives
None) and only our own tokens are accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from arserver.config import Settings
from arserver.errors import ArserverError
from arserver.security.policy import ROLES
from arserver.security.tokens import TokenRecord

log = logging.getLogger(__name__)

#: The signature algorithms accepted (asymmetric only).
ALGORITHMS = ("RS256", "ES256")
#: Longer presented secrets are refused before they are parsed.
MAX_JWT_CHARS = 16 * 1024
#: The largest clock skew that may be configured.
MAX_LEEWAY_S = 300.0
#: A JWT whose ``exp`` lies further ahead than this is refused as implausible.
MAX_REMAINING = timedelta(days=366)
#: Time limit of one refetch of the keys in all (seconds): discovery (when needed), connection,
#: headers and body, however slowly the issuer answers.
FETCH_TIMEOUT_S = 5.0
#: Larger JWKS or discovery documents are refused.
MAX_DOCUMENT_BYTES = 1 << 20
#: Keys fetched longer ago than this are fetched again when next needed (removed keys stop
#: working); when the issuer cannot be reached the keys held keep working.
JWKS_MAX_AGE_S = 3600.0
MIN_RSA_BITS = 2048
#: When several roles map, the first of these wins (the most capable first; inspector and
#: planner may do the same today, inspector is taken). Roles not listed come after, in the
#: order of :data:`~arserver.security.policy.ROLES`.
ROLE_PRECEDENCE = ("admin", "gis", "inspector", "planner", "viewer", "ingest")
ID_PREFIX = "oidc:"

_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SAFE_SUBJECT = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CLAIM_PART = re.compile(r"[^.\s]{1,100}")
_LOOPBACK_NAMES = frozenset({"localhost"})


class OidcConfigError(ArserverError):
    """The OpenID Connect settings cannot work (refused when the server starts)."""


class FetchError(Exception):
    """A discovery or JWKS document could not be fetched or understood."""


# -- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleMapping:
    """From the values of one claim to one arserver role. ``claim``: a dotted path into the
    claims (``roles``, ``realm_access.roles``); its value is a string or a list of strings
    (anything else maps nothing). ``roles``: claim value -> role."""

    claim: tuple[str, ...]
    roles: Mapping[str, str]

    @classmethod
    def parse(cls, claim: str, roles: Mapping[str, str]) -> RoleMapping:
        """The mapping of these settings; :class:`OidcConfigError` when it cannot work."""
        parts = tuple(claim.strip().split("."))
        if not all(_CLAIM_PART.fullmatch(part) for part in parts):
            raise OidcConfigError(
                "ARSERVER_OIDC_ROLE_CLAIM is a claim name or a dotted path such as "
                f"realm_access.roles, got {claim[:100]!r}"
            )
        if not roles:
            raise OidcConfigError(
                "ARSERVER_OIDC_ROLES is empty: no signed-in user could have a role; set a JSON "
                'object such as {"gis-staff": "gis", "viewers": "viewer"}'
            )
        unknown = sorted({role for role in roles.values() if role not in ROLES})
        if unknown:
            raise OidcConfigError(
                f"ARSERVER_OIDC_ROLES maps to unknown roles {', '.join(map(repr, unknown))[:200]}"
                f"; roles are {', '.join(ROLES)}"
            )
        if any(not value for value in roles):
            raise OidcConfigError("ARSERVER_OIDC_ROLES has an empty claim value")
        return cls(parts, dict(roles))

    def values(self, claims: Mapping[str, Any]) -> list[str]:
        """The strings the role claim holds in ``claims`` (none when absent or malformed)."""
        value: Any = claims
        for part in self.claim:
            if not isinstance(value, dict):
                return []
            value = value.get(part)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [item for item in value if isinstance(item, str)]
        return []

    def role_of(self, claims: Mapping[str, Any]) -> str | None:
        """The most capable role the claims map to (:data:`ROLE_PRECEDENCE`), or None."""
        mapped = {self.roles[value] for value in self.values(claims) if value in self.roles}
        order = ROLE_PRECEDENCE + tuple(r for r in ROLES if r not in ROLE_PRECEDENCE)
        return next((role for role in order if role in mapped), None)


def _https_or_loopback(url: str) -> bool:
    """Whether ``url`` is https, or plain http to this machine (tests, a local IdP): keys
    fetched over plain http from elsewhere could be anybody's."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return bool(host) and (
        parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))
    )


def _checked_url(url: str, setting: str) -> str:
    """``url`` if :func:`_https_or_loopback`; :class:`OidcConfigError` naming ``setting``."""
    if not _https_or_loopback(url):
        raise OidcConfigError(
            f"{setting} must be an https URL (plain http only to this machine), got {url[:200]!r}"
        )
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def verifier_from_settings(
    settings: Settings, *, clock: Callable[[], float] = time.monotonic
) -> OidcVerifier | None:
    """The verifier the settings describe, or None when no issuer is configured (then any
    other OIDC setting is an error). Refuses settings that cannot work with
    :class:`OidcConfigError`, whose message names the setting. ``clock``: monotonic seconds,
    for the JWKS cache's intervals."""
    issuer = (settings.oidc_issuer or "").strip()
    if not issuer:
        stray = [
            name
            for name, value in (
                ("ARSERVER_OIDC_AUDIENCE", settings.oidc_audience),
                ("ARSERVER_OIDC_JWKS_URL", settings.oidc_jwks_url),
                ("ARSERVER_OIDC_ROLES", settings.oidc_roles),
            )
            if value
        ]
        if stray:
            raise OidcConfigError(f"{', '.join(stray)} set without ARSERVER_OIDC_ISSUER")
        return None
    _checked_url(issuer, "ARSERVER_OIDC_ISSUER")
    audience = (settings.oidc_audience or "").strip()
    if not audience:
        raise OidcConfigError(
            "ARSERVER_OIDC_AUDIENCE is required with ARSERVER_OIDC_ISSUER (the `aud` that the "
            "identity provider puts into tokens meant for arserver)"
        )
    jwks_url = (settings.oidc_jwks_url or "").strip() or None
    if jwks_url is not None:
        _checked_url(jwks_url, "ARSERVER_OIDC_JWKS_URL")
    if not 0 <= settings.oidc_leeway_s <= MAX_LEEWAY_S:
        raise OidcConfigError(f"ARSERVER_OIDC_LEEWAY_S is between 0 and {MAX_LEEWAY_S:g}")
    mapping = RoleMapping.parse(settings.oidc_role_claim, settings.oidc_roles)
    keys = JwksCache(issuer, jwks_url, refetch_interval_s=settings.oidc_jwks_refetch_s, clock=clock)
    return OidcVerifier(issuer, audience, keys, mapping, leeway_s=settings.oidc_leeway_s)


# -- keys -----------------------------------------------------------------------------------


async def _download(url: str, timeout_s: float) -> bytes:
    """The body of ``url`` (HTTP 200 only, at most :data:`MAX_DOCUMENT_BYTES`)."""
    body = bytearray()
    async with (
        httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client,
        client.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise FetchError(f"answered HTTP {response.status_code}")
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise FetchError("the document is too large")
    return bytes(body)


def _fetch_json(url: str, deadline: float) -> Any:
    """The JSON document at ``url``, fetched before ``deadline`` (``time.monotonic()``
    seconds), or :class:`FetchError`. The deadline holds for the whole exchange (connection,
    headers, body), not per read: the download runs on an event loop of its own in the calling
    thread and is cancelled when time is up. Never call it from a thread running a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop runs in this thread, as it should be
        pass
    else:
        raise FetchError("the keys cannot be fetched on the event loop")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("no time was left to fetch the document")
    try:
        body = asyncio.run(asyncio.wait_for(_download(url, remaining), remaining))
    except TimeoutError:
        raise FetchError("the issuer did not answer in time") from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        raise FetchError(type(exc).__name__) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError("the document is not JSON") from None


def _signing_key(data: Any) -> tuple[str, jwt.PyJWK] | None:
    """(kid, key) of a JWK usable here: RSA >= 2048 bits for RS256 or EC P-256 for ES256, for
    signatures, with a ``kid``; None for anything else (other algorithms, symmetric keys)."""
    if not isinstance(data, dict):
        return None
    kid = data.get("kid")
    if not isinstance(kid, str) or not kid or data.get("use", "sig") != "sig":
        return None
    if data.get("kty") not in ("RSA", "EC") or data.get("alg", None) not in (None, *ALGORITHMS):
        return None
    if data.get("kty") == "EC" and data.get("crv") != "P-256":
        return None
    try:
        key = jwt.PyJWK(data)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    if key.algorithm_name not in ALGORITHMS:
        return None
    public = key.key
    if isinstance(public, rsa.RSAPublicKey):
        return (kid, key) if public.key_size >= MIN_RSA_BITS else None
    if isinstance(public, ec.EllipticCurvePublicKey):
        return (kid, key) if isinstance(public.curve, ec.SECP256R1) else None
    return None  # a private key in a public document, or something else: not used


class JwksCache:
    """The issuer's signing keys by ``kid``, fetched when first needed and again when a key id
    is unknown or the keys are older than :data:`JWKS_MAX_AGE_S`, but never more often than
    once per ``refetch_interval_s`` (so unknown key ids cannot make us hammer the issuer).
    When a fetch fails the keys held keep working. ``jwks_url`` None: read ``jwks_uri`` from
    the issuer's discovery document (once it succeeds, never again). Thread-safe; fetching
    blocks, so call it off the event loop. ``clock``: monotonic seconds.

    At most one thread fetches at a time, for at most :data:`FETCH_TIMEOUT_S`, and no other
    thread ever waits for it: meanwhile a key id held is answered from what is held, and an
    unknown one is refused at once (so requests with made-up key ids cannot tie up the worker
    threads that every other request needs while the issuer is slow)."""

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None,
        *,
        refetch_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.refetch_interval_s = refetch_interval_s
        self.clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The signing key ``kid``, or None when the issuer has none (as far as we may ask)."""
        found = self._keys.get(kid)
        if found is not None:
            if self._old() and self._lock.acquire(blocking=False):  # others use what we hold
                try:
                    self._refetch_if_allowed()
                finally:
                    self._lock.release()
                return self._keys.get(kid)
            return found
        if not self._lock.acquire(blocking=False):  # a fetch is under way: do not wait
            return self._keys.get(kid)
        try:
            if kid not in self._keys:
                self._refetch_if_allowed()
            return self._keys.get(kid)
        finally:
            self._lock.release()

    def _old(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= JWKS_MAX_AGE_S

    def _refetch_if_allowed(self) -> None:
        """Fetch the keys unless the last attempt was less than the interval ago (call with
        the lock held)."""
        now = self.clock()
        if self._attempted_at is not None and now - self._attempted_at < self.refetch_interval_s:
            return
        self._attempted_at = now
        deadline = time.monotonic() + FETCH_TIMEOUT_S  # discovery and keys together
        try:
            url = self.jwks_url or self._discover(deadline)
            document = _fetch_json(url, deadline)
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                raise FetchError("the document has no 'keys' list")
        except FetchError as exc:
            log.warning(
                "fetching the OpenID Connect signing keys failed (%s); keeping the %d held",
                exc,
                len(self._keys),
            )
            return
        usable = dict(found for found in map(_signing_key, keys) if found is not None)
        if not usable:
            log.warning("the OpenID Connect key set has no RS256 or ES256 signing key with a kid")
        self._keys = usable  # replaced whole: readers without the lock see old or new
        self._fetched_at = now

    def _discover(self, deadline: float) -> str:
        """``jwks_uri`` of the issuer's discovery document (remembered once found), fetched
        before ``deadline`` (``time.monotonic()`` seconds)."""
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = _fetch_json(url, deadline)
        if not isinstance(document, dict):
            raise FetchError("the discovery document is not a JSON object")
        if document.get("issuer") != self.issuer:
            raise FetchError("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise FetchError("the discovery document has no jwks_uri")
        if not _https_or_loopback(jwks_uri):
            raise FetchError("the discovery document's jwks_uri is not an https URL")
        self.jwks_url = jwks_uri
        return jwks_uri


# -- verification ---------------------------------------------------------------------------


def issuer_tag(issuer: str) -> str:
    """A short, fixed tag of ``issuer`` for record ids (8 hex digits of its SHA-256)."""
    return hashlib.sha256(issuer.encode("utf-8")).hexdigest()[:8]


def record_id(issuer: str, subject: str, exp: int) -> str:
    """``oidc:<issuer tag>:<subject>:<exp>``: at most 96 characters. A subject outside
    ``[A-Za-z0-9._@+-]{1,64}`` is written as ``~`` and 32 hex digits of its SHA-256."""
    if not _SAFE_SUBJECT.fullmatch(subject):
        subject = "~" + hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{ID_PREFIX}{issuer_tag(issuer)}:{subject}:{exp}"


def stable_subject(record_id_: str) -> str:
    """The person behind a record id: ``oidc:<issuer tag>:<subject>`` for an OpenID Connect
    id with or without its ``:<exp>`` (the same for every JWT of that person), any other id
    (our tokens' hex ids) as it is."""
    if not record_id_.startswith(ID_PREFIX):
        return record_id_
    parts = record_id_[len(ID_PREFIX) :].split(":")
    if len(parts) == 3 and parts[2].isascii() and parts[2].isdigit():
        return f"{ID_PREFIX}{parts[0]}:{parts[1]}"
    return record_id_


def subject_of(record: TokenRecord) -> str:
    """Who presents ``record``, stable across their tokens' lifetimes: the token id for our
    tokens, ``oidc:<issuer tag>:<subject>`` for an OpenID Connect caller (see
    :func:`stable_subject`). The audit log's actor and a privacy subject's ``oidc:`` form."""
    return stable_subject(record.id)


def _display_name(claims: Mapping[str, Any], subject: str) -> str:
    for claim in ("preferred_username", "name"):
        value = claims.get(claim)
        if isinstance(value, str):
            text = _CONTROL.sub("", value).strip()[:200]
            if text:
                return text
    return f"signed in as {_CONTROL.sub('', subject)[:100]}"


def _utc(timestamp: Any) -> datetime | None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, ValueError, OSError):
        return None


class OidcVerifier:
    """Bearer JWTs of one issuer for one audience (see the module's contract); the
    :class:`~arserver.security.tokens.ExternalVerifier` of the :class:`Authenticator
    <arserver.security.tokens.Authenticator>`. ``leeway_s``: allowed clock skew in seconds."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        keys: JwksCache,
        roles: RoleMapping,
        *,
        leeway_s: float,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.roles = roles
        self.leeway = timedelta(seconds=leeway_s)
        self._prefix = f"{ID_PREFIX}{issuer_tag(issuer)}:"

    def recognises(self, secret: str) -> bool:
        """Whether ``secret`` looks like a JWT (three base64url parts; oversized ones too, so
        that they are refused here)."""
        if len(secret) > MAX_JWT_CHARS:
            return secret.count(".") == 2
        return _JWT_SHAPE.fullmatch(secret) is not None

    def verify(self, secret: str) -> TokenRecord | None:
        """The record of a valid JWT, or None (why is logged, never the token). Blocks while
        keys are fetched."""
        if len(secret) > MAX_JWT_CHARS:
            return None
        try:
            return self._verify(secret)
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            log.info("refused an OpenID Connect token: %s", type(exc).__name__)
            return None

    def _verify(self, secret: str) -> TokenRecord | None:
        header = jwt.get_unverified_header(secret)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS or not isinstance(kid, str) or not 0 < len(kid) <= 200:
            log.info("refused an OpenID Connect token: algorithm or key id not accepted")
            return None
        if "crit" in header:
            log.info("refused an OpenID Connect token: critical header extensions")
            return None
        key = self.keys.key(kid)
        if key is None:
            log.info("refused an OpenID Connect token: the issuer has no key of its kid")
            return None
        if key.algorithm_name != alg:
            log.info("refused an OpenID Connect token: its algorithm does not fit its key")
            return None
        claims: dict[str, Any] = jwt.decode(
            secret,
            key=key.key,
            algorithms=[alg],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        subject, exp = claims.get("sub"), claims.get("exp")
        expires_at = _utc(exp)
        if (
            not isinstance(subject, str)
            or not subject
            or not isinstance(exp, int | float)
            or expires_at is None
        ):
            log.info("refused an OpenID Connect token: no usable sub or exp")
            return None
        now = datetime.now(UTC)
        if expires_at > now + MAX_REMAINING:
            log.info("refused an OpenID Connect token: it expires implausibly late")
            return None
        role = self.roles.role_of(claims)
        if role is None:
            log.info("refused an OpenID Connect token: no role claim maps to an arserver role")
            return None
        issued = _utc(claims.get("iat"))
        return TokenRecord(
            id=record_id(self.issuer, subject, int(exp)),
            name=_display_name(claims, subject),
            role=role,
            created_at=issued if issued is not None and issued <= now + self.leeway else now,
            expires_at=expires_at,
            scope=None,
        )

    def owns(self, token_id: str) -> bool:
        """Whether ``token_id`` is an OpenID Connect record id (of any issuer)."""
        return token_id.startswith(ID_PREFIX)

    def valid_until(self, record: TokenRecord) -> datetime:
        """``exp`` plus the leeway: the moment from which the JWT would be refused."""
        expires_at = record.expires_at or datetime.now(UTC)
        return expires_at + self.leeway

    def invalid_among(self, token_ids: Collection[str]) -> set[str]:
        """Those of ``token_ids`` whose JWT expired (beyond the leeway), and those of another
        issuer or of no readable expiry."""
        now = datetime.now(UTC).timestamp()
        leeway = self.leeway.total_seconds()
        invalid = set()
        for token_id in token_ids:
            _, _, exp = token_id.rpartition(":")
            readable = token_id.startswith(self._prefix) and exp.isascii() and exp.isdigit()
            if not readable or int(exp) + leeway <= now:
                invalid.add(token_id)
        return invalid
