"""The gateway's authentication of callers: signed JWTs (pyjwt) and API keys for machine clients.

Only the mechanism lives here; which role may call which route is the gateway's table.

* JWT: issuer, audience and expiry are checked; `sub`, `role` and `exp` are required; every key in a
  `KeySet` is bound to ONE algorithm and the token's header must name exactly that algorithm, so
  `alg: none` and HS/RS confusion (an RSA public key used as an HMAC secret) are refused. Keys
  rotate by `kid`: publish the new key next to the old one, switch the signer, drop the old key
  after the longest token lifetime. A verified token is remembered (bounded LRU keyed by the whole token
  string, signature included) until its `exp` plus the leeway, and only while the key that verified it is
  still in the key set, so that a repeated bearer token is not re-checked on every request.
* API keys: `crm_<key id>_<secret>`; only the SHA-256 of the whole key is stored (keys are 256-bit
  random values, so a fast hash is enough: there is nothing to brute-force).
* `mint_token` builds development/test tokens; the gateway exposes it as the `crm-token` command.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms

from crm_common.edge import AuthError  # one failure type for the edge token and the user's credentials

ROLES: tuple[str, ...] = ("tms", "agent", "account_manager", "customer", "admin")
REQUIRED_CLAIMS: tuple[str, ...] = ("sub", "role", "exp")
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
DEFAULT_ALLOWED_ALGORITHMS = frozenset(HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS)


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the gateway passes it on (X-Actor-Id, X-Actor-Role, X-Actor-Team, X-Customer-Id)."""

    subject: str
    role: str
    method: str = "jwt"  # "jwt" or "api_key"
    team: str | None = None
    customer_id: str | None = None
    customers: frozenset[str] | None = None  # account manager's customers when the token lists them
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def client_key(self) -> str:
        """What rate limits count by."""
        return f"{self.method}:{self.subject}"

    def identity_headers(self) -> dict[str, str]:
        """For role customer the actor IS the customer company: X-Actor-Id carries the customer id (what
        upstreams compare with an object's customer_id) and X-Actor-Subject the signed-in user."""
        actor = self.customer_id if self.role == "customer" and self.customer_id else self.subject
        headers = {"X-Actor-Id": actor, "X-Actor-Subject": self.subject, "X-Actor-Role": self.role}
        if self.team:
            headers["X-Actor-Team"] = self.team
        if self.customer_id:
            headers["X-Customer-Id"] = self.customer_id
        return headers


def _principal_from_claims(claims: Mapping[str, Any], method: str) -> Principal:
    role = claims.get("role")
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError("claim 'sub' must be a non-empty string")
    customer_id = claims.get("customer_id")
    if customer_id is not None and not isinstance(customer_id, str):
        raise AuthError("claim 'customer_id' must be a string")
    if role == "customer" and not customer_id:
        raise AuthError("a customer token needs the 'customer_id' claim")
    customers = claims.get("customers")
    if customers is not None:
        if not isinstance(customers, list) or not all(isinstance(c, str) for c in customers):
            raise AuthError("claim 'customers' must be a list of strings")
        customers = frozenset(customers)
    team = claims.get("team")
    return Principal(
        subject=subject,
        role=role,
        method=method,
        team=team if isinstance(team, str) else None,
        customer_id=customer_id,
        customers=customers,
        name=claims.get("name") if isinstance(claims.get("name"), str) else None,
        claims=dict(claims),
    )


# ---------------------------------------------------------------- keys


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    key: Any  # bytes secret for HS*, a public key object for asymmetric algorithms


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    key: Any  # bytes secret for HS*, a private key object or PEM for asymmetric algorithms


def _load_key(algorithm: str, material: Any, *, private: bool) -> Any:
    if algorithm not in DEFAULT_ALLOWED_ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is not supported")
    if algorithm in HMAC_ALGORITHMS:
        secret = material.encode() if isinstance(material, str) else bytes(material)
        if secret.lstrip().startswith(b"-----BEGIN"):
            raise ValueError("a PEM key cannot be an HMAC secret")
        if len(secret) < 32:
            raise ValueError("HMAC secrets must be at least 32 bytes")
        return secret
    implementation = get_default_algorithms()[algorithm]
    if isinstance(material, (str, bytes)):
        return implementation.prepare_key(material)
    return material


class KeySet:
    """Verification keys by `kid`; each key accepts exactly one algorithm."""

    def __init__(self, keys: Iterable[VerificationKey] = ()):
        self._keys: dict[str, VerificationKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: VerificationKey) -> None:
        if key.kid in self._keys:
            raise ValueError(f"duplicate kid {key.kid!r}")
        self._keys[key.kid] = key

    def add_secret(self, kid: str, secret: str | bytes, algorithm: str = "HS256") -> None:
        if algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"{algorithm} is not an HMAC algorithm")
        self.add(VerificationKey(kid, algorithm, _load_key(algorithm, secret, private=False)))

    def add_public_key(self, kid: str, pem_or_key: Any, algorithm: str = "RS256") -> None:
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"{algorithm} is not an asymmetric algorithm")
        self.add(VerificationKey(kid, algorithm, _load_key(algorithm, pem_or_key, private=False)))

    def get(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]]) -> KeySet:
        """Entries `{"kid", "alg", "secret"}` (HS*), `{"kid", "alg", "public_key": PEM}` or JWKs (`kty`...)."""
        keyset = cls()
        for entry in entries:
            if "kty" in entry:
                jwk = jwt.PyJWK(dict(entry))
                kid = entry.get("kid")
                if not kid or not jwk.algorithm_name or jwk.algorithm_name == "none":
                    raise ValueError("every JWK needs 'kid' and 'alg'")
                keyset.add(VerificationKey(kid, jwk.algorithm_name, jwk.key))
            elif "secret" in entry:
                keyset.add_secret(entry["kid"], entry["secret"], entry.get("alg", "HS256"))
            elif "public_key" in entry:
                keyset.add_public_key(entry["kid"], entry["public_key"], entry.get("alg", "RS256"))
            else:
                raise ValueError(f"key entry {entry.get('kid')!r} has no secret, public_key or JWK")
        return keyset


def signing_key_from_config(entry: Mapping[str, Any]) -> SigningKey:
    algorithm = entry.get("alg", "HS256")
    if algorithm in HMAC_ALGORITHMS:
        return SigningKey(entry["kid"], algorithm, _load_key(algorithm, entry["secret"], private=True))
    return SigningKey(entry["kid"], algorithm, _load_key(algorithm, entry["private_key"], private=True))


# ---------------------------------------------------------------- verification


class JWTVerifier:
    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        allowed_algorithms: Iterable[str] = DEFAULT_ALLOWED_ALGORITHMS,
        leeway_s: float = 30.0,
        max_lifetime: dt.timedelta | None = dt.timedelta(hours=24),
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.allowed_algorithms = frozenset(a for a in allowed_algorithms if a != "none")
        self.leeway_s = leeway_s
        self.max_lifetime = max_lifetime
        self.cache_size = cache_size
        self.clock = clock
        # token -> (principal, the key that verified it, the wall-clock second from which pyjwt would call it expired)
        self._verified: OrderedDict[str, tuple[Principal, VerificationKey, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthError otherwise. Successes are cached, failures never are."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, key, expires_at = cached
            if self.clock() < expires_at and self.keys.get(key.kid) is key:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]  # expired or its key was replaced: the full check below gives the reason
        principal, key = self._verify_signed(token)
        if self.cache_size > 0:
            # pyjwt refuses a token once exp <= now - leeway; nbf has already passed and stays passed
            self._verified[token] = (principal, key, float(principal.claims["exp"]) + self.leeway_s)
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, VerificationKey]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none" or algorithm not in self.allowed_algorithms:
            raise AuthError(f"algorithm {algorithm!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthError("token header has no 'kid'")
        key = self.keys.get(kid)
        if key is None:
            raise AuthError(f"unknown key id {kid!r}")
        if algorithm != key.algorithm:
            raise AuthError(f"key {kid!r} does not accept algorithm {algorithm!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"missing claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        if self.max_lifetime is not None and "iat" in claims:
            if float(claims["exp"]) - float(claims["iat"]) > self.max_lifetime.total_seconds():
                raise AuthError("token lifetime too long")
        return _principal_from_claims(claims, "jwt"), key


def mint_token(
    signing_key: SigningKey,
    *,
    subject: str,
    role: str,
    issuer: str,
    audience: str,
    ttl: dt.timedelta = dt.timedelta(hours=8),
    customer_id: str | None = None,
    customers: Iterable[str] | None = None,
    team: str | None = None,
    name: str | None = None,
    now: dt.datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A signed token for development, tests and the console's demo login."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "customer" and not customer_id:
        raise ValueError("a customer token needs customer_id")
    now = now or dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if customer_id:
        claims["customer_id"] = customer_id
    if customers is not None:
        claims["customers"] = sorted(customers)
    if team:
        claims["team"] = team
    if name:
        claims["name"] = name
    if extra:
        claims.update(extra)
    return jwt.encode(claims, signing_key.key, algorithm=signing_key.algorithm, headers={"kid": signing_key.kid})


# ---------------------------------------------------------------- API keys

API_KEY_PREFIX = "crm"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    name: str
    role: str
    sha256: str
    customer_id: str | None = None
    team: str | None = None

    def principal(self) -> Principal:
        return _principal_from_claims(
            {"sub": f"apikey:{self.name}", "role": self.role, "customer_id": self.customer_id, "team": self.team, "name": self.name},
            "api_key",
        )


def generate_api_key(name: str, role: str, *, customer_id: str | None = None, team: str | None = None) -> tuple[str, ApiKeyRecord]:
    """Returns the plaintext key (show it once) and the record to store (hash only)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    key_id = secrets.token_hex(4)
    plaintext = f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return plaintext, ApiKeyRecord(key_id, name, role, hash_api_key(plaintext), customer_id, team)


class ApiKeyStore:
    """Hashed API keys; lookup by the key id embedded in the key, then a constant-time hash compare."""

    def __init__(self, records: Iterable[ApiKeyRecord] = ()):
        self._by_id: dict[str, ApiKeyRecord] = {}
        for record in records:
            if record.role not in ROLES:
                raise ValueError(f"API key {record.name!r}: unknown role {record.role!r}")
            self._by_id[record.key_id] = record

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]]) -> ApiKeyStore:
        return cls(
            ApiKeyRecord(
                key_id=e["key_id"],
                name=e["name"],
                role=e["role"],
                sha256=e["sha256"].lower(),
                customer_id=e.get("customer_id"),
                team=e.get("team"),
            )
            for e in entries
        )

    def verify(self, api_key: str) -> Principal:
        parts = api_key.split("_", 2)
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
            raise AuthError("malformed API key")
        record = self._by_id.get(parts[1])
        if record is None or not hmac.compare_digest(record.sha256, hash_api_key(api_key)):
            raise AuthError("unknown API key")
        return record.principal()


def record_as_config(record: ApiKeyRecord) -> str:
    """The JSON entry to put in the gateway's GATEWAY_API_KEYS list."""
    return json.dumps({k: v for k, v in record.__dict__.items() if v is not None})
