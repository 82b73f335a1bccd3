"""crm_gateway.auth.JWTVerifier remembers verified tokens: the signature is checked once per token, never past the
token's expiry, never after its key left the key set, and failures are never remembered."""

from __future__ import annotations

import datetime as dt
import time

import pytest

import crm_gateway.auth as auth
from crm_gateway.auth import AuthError, JWTVerifier, KeySet, SigningKey, mint_token

ISS, AUD = "crm-test", "crm-gateway"
SECRET = "a-test-secret-of-enough-length-for-hs256"
KEY = SigningKey("hs-1", "HS256", SECRET.encode())


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def keys(secret: str = SECRET) -> KeySet:
    keyset = KeySet()
    keyset.add_secret("hs-1", secret)
    return keyset


def token(ttl: dt.timedelta = dt.timedelta(hours=1), key: SigningKey = KEY, **kw) -> str:
    return mint_token(key, subject=kw.pop("subject", "u1"), role=kw.pop("role", "agent"), issuer=ISS, audience=AUD, ttl=ttl, **kw)


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every full verification (pyjwt decode with the signature check) the verifier makes."""
    seen: list[str] = []
    real = auth.jwt.decode

    def counting(jwt_token, *args, **kwargs):
        seen.append(jwt_token)
        return real(jwt_token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counting)
    return seen


def test_a_repeated_token_is_verified_once_and_gives_the_same_principal(decodes):
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD)
    t = token(team="hotline")
    first, second = verifier.verify(t), verifier.verify(t)
    assert first == second and (second.subject, second.role, second.team) == ("u1", "agent", "hotline")
    assert decodes == [t]
    other = token(subject="u2")
    assert verifier.verify(other).subject == "u2"
    assert decodes == [t, other]


def test_the_cache_never_outlives_the_token(decodes):
    clock = FakeClock()
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD, leeway_s=30, clock=clock)
    t = token(ttl=dt.timedelta(minutes=10))
    verifier.verify(t)
    clock.now += 10 * 60 + 29  # still inside exp + leeway: served from the cache
    verifier.verify(t)
    assert len(decodes) == 1
    clock.now += 2  # past exp + leeway: checked again in full
    verifier.verify(t)
    assert len(decodes) == 2


def test_an_expired_token_is_refused_even_after_it_was_cached():
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD, leeway_s=0)
    now = dt.datetime.now(dt.UTC)
    t = token(ttl=dt.timedelta(seconds=1), now=now)  # exp is the next whole second at most
    verifier.verify(t)
    time.sleep(max(0.0, int(now.timestamp()) + 1 - time.time()) + 0.05)
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(t)


def test_a_cached_token_is_refused_once_its_key_is_gone():
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD)
    t = token()
    verifier.verify(t)
    verifier.keys = keys("another-secret-of-enough-length-for-hs256")  # same kid, new key: rotation by replacement
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(t)
    verifier.keys = KeySet()
    with pytest.raises(AuthError, match="unknown key id"):
        verifier.verify(t)


def test_failures_are_not_cached_and_a_tampered_token_misses(decodes):
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD)
    good = token()
    verifier.verify(good)
    header, payload, signature = good.split(".")
    tampered = ".".join([header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    for _ in range(2):
        with pytest.raises(AuthError, match="bad signature"):
            verifier.verify(tampered)
    assert decodes == [good, tampered, tampered]


def test_the_cache_is_bounded_least_recently_used_first(decodes):
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD, cache_size=2)
    a, b, c = (token(subject=s) for s in ("a", "b", "c"))
    verifier.verify(a)
    verifier.verify(b)
    verifier.verify(a)  # a is now the most recent
    verifier.verify(c)  # evicts b
    decodes.clear()
    verifier.verify(a)
    verifier.verify(c)
    assert decodes == []
    verifier.verify(b)
    assert decodes == [b]


def test_cache_size_zero_checks_every_time(decodes):
    verifier = JWTVerifier(keys(), issuer=ISS, audience=AUD, cache_size=0)
    t = token()
    verifier.verify(t)
    verifier.verify(t)
    assert decodes == [t, t]
