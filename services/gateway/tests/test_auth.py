"""crm_gateway.auth: JWT verification (claims, algorithms, key rotation) and API keys."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm_gateway.auth import (
    ApiKeyStore,
    AuthError,
    JWTVerifier,
    KeySet,
    SigningKey,
    generate_api_key,
    mint_token,
)

ISS, AUD = "crm-test", "crm-gateway"
SECRET = "a-test-secret-of-enough-length-for-hs256"


def _rsa():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public_pem


@pytest.fixture(scope="module")
def rsa_pair():
    return _rsa()


@pytest.fixture
def verifier(rsa_pair):
    keys = KeySet()
    keys.add_secret("hs-1", SECRET)
    keys.add_public_key("rs-1", rsa_pair[1], "RS256")
    return JWTVerifier(keys, issuer=ISS, audience=AUD)


def _token(key: SigningKey, **kw):
    defaults = dict(subject="u1", role="agent", issuer=ISS, audience=AUD)
    defaults.update(kw)
    return mint_token(key, **defaults)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_hs_and_rs_tokens_give_the_principal(verifier, rsa_pair):
    p = verifier.verify(_token(SigningKey("hs-1", "HS256", SECRET.encode()), team="hotline"))
    assert (p.subject, p.role, p.team, p.method) == ("u1", "agent", "hotline", "jwt")
    p = verifier.verify(_token(SigningKey("rs-1", "RS256", rsa_pair[0]), role="customer", subject="c-user", customer_id="C1"))
    assert p.role == "customer" and p.customer_id == "C1"
    assert p.identity_headers() == {"X-Actor-Id": "C1", "X-Actor-Subject": "c-user", "X-Actor-Role": "customer", "X-Customer-Id": "C1"}
    p = verifier.verify(_token(SigningKey("hs-1", "HS256", SECRET.encode()), role="account_manager", customers=["C2", "C1"]))
    assert p.customers == frozenset({"C1", "C2"})


def test_expired_token_refused(verifier):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    token = _token(SigningKey("hs-1", "HS256", SECRET.encode()), now=past, ttl=dt.timedelta(hours=1))
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token)


def test_wrong_audience_and_issuer_refused(verifier):
    key = SigningKey("hs-1", "HS256", SECRET.encode())
    with pytest.raises(AuthError, match="audience"):
        verifier.verify(_token(key, audience="other-api"))
    with pytest.raises(AuthError, match="issuer"):
        verifier.verify(_token(key, issuer="evil"))


def test_wrong_signature_refused(verifier):
    with pytest.raises(AuthError, match="signature"):
        verifier.verify(_token(SigningKey("hs-1", "HS256", b"another-secret-of-32-bytes-or-more-xx")))
    other_private, _ = _rsa()
    with pytest.raises(AuthError, match="signature"):
        verifier.verify(_token(SigningKey("rs-1", "RS256", other_private)))


def test_alg_none_refused(verifier):
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {"sub": "u1", "role": "admin", "iss": ISS, "aud": AUD, "exp": now + 600}
    for alg in ("none", "None", "NONE"):
        token = f"{_b64({'alg': alg, 'kid': 'hs-1', 'typ': 'JWT'})}.{_b64(claims)}."
        with pytest.raises(AuthError, match="not allowed"):
            verifier.verify(token)


def test_hs_rs_confusion_refused(verifier, rsa_pair):
    """An attacker signs HS256 with the RSA public key as the HMAC secret and names the RSA kid."""
    import hashlib
    import hmac

    now = int(dt.datetime.now(dt.UTC).timestamp())
    header = _b64({"alg": "HS256", "kid": "rs-1", "typ": "JWT"})
    body = _b64({"sub": "u1", "role": "admin", "iss": ISS, "aud": AUD, "exp": now + 600})
    signature = hmac.new(rsa_pair[1], f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(AuthError, match="does not accept"):
        verifier.verify(token)
    # and an RS token presented under the HMAC key's id
    with pytest.raises(AuthError, match="does not accept"):
        verifier.verify(_token(SigningKey("hs-1", "RS256", rsa_pair[0])))


def test_missing_claims_refused(verifier):
    key = SECRET.encode()
    now = int(dt.datetime.now(dt.UTC).timestamp())
    full = {"sub": "u1", "role": "agent", "iss": ISS, "aud": AUD, "exp": now + 600}
    for missing in ("sub", "role", "exp"):
        claims = {k: v for k, v in full.items() if k != missing}
        token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": "hs-1"})
        with pytest.raises(AuthError):
            verifier.verify(token)
    bad_role = jwt.encode({**full, "role": "superuser"}, key, algorithm="HS256", headers={"kid": "hs-1"})
    with pytest.raises(AuthError, match="unknown role"):
        verifier.verify(bad_role)
    customer_without_id = jwt.encode({**full, "role": "customer"}, key, algorithm="HS256", headers={"kid": "hs-1"})
    with pytest.raises(AuthError, match="customer_id"):
        verifier.verify(customer_without_id)
    no_kid = jwt.encode(full, key, algorithm="HS256")
    with pytest.raises(AuthError, match="kid"):
        verifier.verify(no_kid)


def test_key_rotation_by_kid():
    old, new = "old-secret-0123456789-0123456789ab", "new-secret-0123456789-0123456789ab"
    both = KeySet.from_config([{"kid": "k1", "alg": "HS256", "secret": old}, {"kid": "k2", "alg": "HS256", "secret": new}])
    only_new = KeySet.from_config([{"kid": "k2", "alg": "HS256", "secret": new}])
    old_token = _token(SigningKey("k1", "HS256", old.encode()))
    new_token = _token(SigningKey("k2", "HS256", new.encode()))
    during = JWTVerifier(both, issuer=ISS, audience=AUD)
    after = JWTVerifier(only_new, issuer=ISS, audience=AUD)
    assert during.verify(old_token).subject == during.verify(new_token).subject == "u1"
    assert after.verify(new_token).role == "agent"
    with pytest.raises(AuthError, match="unknown key id"):
        after.verify(old_token)


def test_jwks_entries_are_bound_to_their_algorithm(rsa_pair):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_pair[0].public_key()))
    jwk.update(kid="j1", alg="RS256")
    verifier = JWTVerifier(KeySet.from_config([jwk]), issuer=ISS, audience=AUD)
    assert verifier.verify(_token(SigningKey("j1", "RS256", rsa_pair[0]), subject="x")).subject == "x"


def test_api_keys_are_stored_hashed_and_verified():
    plaintext, record = generate_api_key("tms-east", "tms")
    assert plaintext not in json.dumps(record.__dict__)
    store = ApiKeyStore([record])
    principal = store.verify(plaintext)
    assert (principal.role, principal.method, principal.subject) == ("tms", "api_key", "apikey:tms-east")
    for bad in (plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"), "crm_nope_x", "garbage"):
        with pytest.raises(AuthError):
            store.verify(bad)


def test_crm_token_cli_mints_a_token_the_gateway_accepts(tmp_path):
    from crm_gateway.settings import GatewaySettings

    out = subprocess.run(
        [sys.executable, "-m", "crm_gateway.cli", "--role", "customer", "--customer-id", "C9", "--sub", "portal-1"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    principal = GatewaySettings().verifier().verify(out.stdout.strip())
    assert (principal.subject, principal.role, principal.customer_id) == ("portal-1", "customer", "C9")
    bad = subprocess.run([sys.executable, "-m", "crm_gateway.cli", "--role", "customer"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_crm_token_cli_mints_the_edge_token_the_gateway_would_send_a_service(tmp_path):
    from crm_common.edge import EdgeTokenVerifier
    from crm_gateway.settings import GatewaySettings

    out = subprocess.run(
        [sys.executable, "-m", "crm_gateway.cli", "--role", "customer", "--customer-id", "C9", "--sub", "portal-1", "--edge", "complaints"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    identity = EdgeTokenVerifier(GatewaySettings().edge, audience="complaints").verify(out.stdout.strip())
    assert identity == {"x-actor-id": "C9", "x-actor-subject": "portal-1", "x-actor-role": "customer", "x-customer-id": "C9"}
