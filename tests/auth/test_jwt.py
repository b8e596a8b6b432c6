"""Single sign-on tokens (ccrouter.auth.jwt) against a real JWKS file and a loopback JWKS server
(ccrouter.testing.jwks): every acceptance and refusal, rotation, the refetch rate limit, the caches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ccrouter.auth.jwt import JwtVerifier
from ccrouter.config import JwtConfig
from ccrouter.errors import AuthenticationError, ConfigError
from ccrouter.testing.jwks import JwksServer, SigningKey, b64url, forge, jwks_document

ISSUER = "https://idp.example.test"
AUDIENCE = "ccrouter"
NOW = 1_800_000_000.0
LEEWAY = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.rsa("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.ec("ec-1")


@pytest.fixture(scope="module")
def new_key() -> SigningKey:
    return SigningKey.rsa("rsa-2")


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-42",
        "email": "ada@example.test",
        "exp": NOW + 600,
        "iat": NOW,
    }
    base.update(extra)
    return {name: value for name, value in base.items() if value is not None}


def config(**fields: Any) -> JwtConfig:
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "user_claim": "email",
        "team_claim": "team",
        "role_claim": "groups",
        "role_map": {"gw-viewers": "viewer", "gw-ops": "operator", "admin": "admin"},
        "leeway_s": LEEWAY,
    }
    base.update(fields)
    return JwtConfig(**base)


Make = Callable[..., Any]


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: SigningKey, ec_key: SigningKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(orjson.dumps(jwks_document([rsa_key, ec_key])))
    return path


@pytest.fixture
async def idp(rsa_key: SigningKey, ec_key: SigningKey) -> AsyncIterator[JwksServer]:
    async with JwksServer([rsa_key, ec_key]) as server:
        yield server


@pytest.fixture
async def make(idp: JwksServer, jwks_file: Path) -> AsyncIterator[Make]:
    """make(source, **config fields) -> a started verifier with a fake clock (closed at the end)."""
    made: list[JwtVerifier] = []

    async def _make(source: str = "url", clock: Clock | None = None, **fields: Any) -> JwtVerifier:
        where = {"jwks_url": idp.url} if source == "url" else {"jwks_file": str(jwks_file)}
        verifier = JwtVerifier(config(**where, **fields), clock=clock or Clock())
        await verifier.start()
        made.append(verifier)
        return verifier

    yield _make
    for verifier in made:
        await verifier.aclose()


SOURCES = pytest.mark.parametrize("source", ["url", "file"])


async def refused(verifier: JwtVerifier, token: str, reason: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    assert caught.value.status == 401
    assert caught.value.message == reason
    for segment in token.split("."):
        if len(segment) >= 8:
            assert segment not in caught.value.message


# -- acceptance ------------------------------------------------------------------------------------


@SOURCES
async def test_rs256_and_es256_tokens_name_the_principal(
    make: Make, source: str, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    verifier = await make(source)
    for key in (rsa_key, ec_key):
        token = key.mint(claims(team="research", groups=["staff", "gw-viewers"]))
        principal = await verifier.verify(token)
        assert principal.kind == "jwt"
        assert principal.id == "jwt:u-42"
        assert principal.user == "ada@example.test"
        assert principal.team == "research"
        assert principal.role == "viewer"
        assert principal.expires_at == NOW + 600


async def test_roles_the_highest_mapped_wins_and_only_role_map_grants(
    make: Make, rsa_key: SigningKey
) -> None:
    verifier = await make()
    cases: list[tuple[Any, str]] = [
        (["gw-viewers", "gw-ops"], "operator"),
        ("gw-ops", "operator"),
        (["admin"], "admin"),  # listed in role_map
        (["operator"], "client"),  # a role name the IdP sent, not in role_map: the default
        (["unknown", 7, None], "client"),
        (None, "client"),
    ]
    for groups, role in cases:
        principal = await verifier.verify(rsa_key.mint(claims(groups=groups)))
        assert principal.role == role, groups


async def test_no_role_mapping_and_no_default_is_refused(make: Make, rsa_key: SigningKey) -> None:
    verifier = await make(default_role=None)
    await refused(verifier, rsa_key.mint(claims(groups=["staff"])), "token maps to no role")
    assert (await verifier.verify(rsa_key.mint(claims(groups="gw-ops")))).role == "operator"


async def test_an_audience_list_accepts_any_of_them(make: Make, rsa_key: SigningKey) -> None:
    verifier = await make(audience=["other", AUDIENCE])
    assert (await verifier.verify(rsa_key.mint(claims(aud=[AUDIENCE, "x"])))).id == "jwt:u-42"


async def test_a_token_without_kid_uses_a_single_key_jwks(tmp_path: Path, rsa_key: SigningKey) -> None:
    path = tmp_path / "one.json"
    await asyncio.to_thread(path.write_bytes, orjson.dumps(jwks_document([rsa_key], with_alg=False)))
    verifier = JwtVerifier(config(jwks_file=str(path)), clock=Clock())
    await verifier.start()
    try:
        assert (await verifier.verify(rsa_key.mint(claims(), kid=None))).id == "jwt:u-42"
    finally:
        await verifier.aclose()


# -- refusals --------------------------------------------------------------------------------------


@SOURCES
async def test_claims_refused(make: Make, source: str, rsa_key: SigningKey) -> None:
    verifier = await make(source)
    await refused(verifier, rsa_key.mint(claims(exp=NOW - 3600)), "token expired")
    await refused(verifier, rsa_key.mint(claims(iss="https://evil.test")), "token issuer not accepted")
    await refused(verifier, rsa_key.mint(claims(iss=ISSUER + ".evil")), "token issuer not accepted")
    await refused(verifier, rsa_key.mint(claims(aud="someone-else")), "token audience not accepted")
    await refused(verifier, rsa_key.mint(claims(exp=None)), "token lacks the exp claim")
    await refused(verifier, rsa_key.mint(claims(aud=None)), "token lacks the aud claim")
    await refused(verifier, rsa_key.mint(claims(email=None)), "token lacks the email claim")
    await refused(verifier, rsa_key.mint(claims(email="x" * 300)), "token email claim is too long")
    await refused(verifier, rsa_key.mint(claims(exp="tomorrow")), "token exp is not a number")
    for odd in (float("nan"), float("inf"), 10**400):  # JSON NaN, Infinity, an integer float() cannot hold
        await refused(verifier, rsa_key.mint(claims(exp=odd)), "token exp is not a number")
    await refused(verifier, rsa_key.mint(claims(iat=float("nan"))), "token iat is not a number")


@SOURCES
async def test_keys_and_algorithms_refused(
    make: Make, source: str, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    verifier = await make(source)
    stranger = SigningKey.ec("ec-1")  # the same kid, another key
    await refused(verifier, stranger.mint(claims()), "token signature invalid")
    await refused(verifier, rsa_key.mint(claims(), kid="nobody"), "token key id unknown")
    await refused(verifier, rsa_key.mint(claims(), kid="ec-1"), "token algorithm does not match its key")
    none = forge({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims())
    assert JwtVerifier.looks_like_jwt(none)
    await refused(verifier, none, "token algorithm not allowed")
    await refused(verifier, forge({"alg": "None", "kid": "rsa-1"}, claims()), "token algorithm not allowed")
    # HS/RS confusion: the RSA public key (PEM, or its JWK's modulus) used as an HMAC secret.
    for secret in (rsa_key.public_pem(), rsa_key.jwk()["n"].encode()):
        hs = forge({"alg": "HS256", "kid": "rsa-1"}, claims(), hmac_secret=secret)
        await refused(verifier, hs, "token algorithm not allowed")
    # Header alg and key alg swapped: an RS256 token relabelled ES256 for the EC key.
    header, payload, signature = rsa_key.mint(claims()).split(".")
    relabelled = f"{b64url(orjson.dumps({'alg': 'ES256', 'kid': 'ec-1'}))}.{payload}.{signature}"
    await refused(verifier, relabelled, "token signature invalid")
    # A payload changed after signing.
    forged_payload = b64url(orjson.dumps(claims(groups=["admin"])))
    await refused(verifier, f"{header}.{forged_payload}.{signature}", "token signature invalid")


async def test_only_the_configured_algorithms(make: Make, rsa_key: SigningKey, ec_key: SigningKey) -> None:
    verifier = await make(algorithms=["RS256"])
    assert (await verifier.verify(rsa_key.mint(claims()))).role == "client"
    await refused(verifier, ec_key.mint(claims()), "token algorithm not allowed")


async def test_malformed_tokens(make: Make, rsa_key: SigningKey) -> None:
    verifier = await make()
    good = rsa_key.mint(claims())
    header, payload, signature = good.split(".")
    not_json = b64url(b"{not json")
    cases = [
        f"{header[:-1]}.{payload}.{signature}",  # broken base64 (a bad length)
        f"{header}.{payload[:-1]}.{signature}",
        f"{not_json}.{payload}.{signature}",
        f"{header}.{not_json}.{signature}",
        f"{b64url(b'[1, 2]')}.{payload}.{signature}",  # a header that is not an object
        f"{header}.{b64url(b'[1]')}.{signature}",
        f"{b64url(orjson.dumps({'alg': 'RS256', 'kid': 7}))}.{payload}.{signature}",
        "é" + good,
    ]
    for token in cases:
        with pytest.raises(AuthenticationError) as caught:
            await verifier.verify(token)
        assert caught.value.message in {"malformed token", "token signature invalid"}, token


async def test_an_oversized_token_is_refused_before_parsing(make: Make, rsa_key: SigningKey) -> None:
    verifier = await make(max_token_bytes=2048)
    huge = rsa_key.mint(claims(padding="a" * 4096))
    await refused(verifier, huge, "token too large")
    await refused(verifier, "a" * 100_000 + ".b.c", "token too large")
    assert verifier.stats.checks == 0


# -- time and leeway -------------------------------------------------------------------------------


async def test_leeway_bounds(make: Make, rsa_key: SigningKey) -> None:
    verifier = await make()
    assert await verifier.verify(rsa_key.mint(claims(exp=NOW - LEEWAY + 1)))
    await refused(verifier, rsa_key.mint(claims(exp=NOW - LEEWAY)), "token expired")
    assert await verifier.verify(rsa_key.mint(claims(nbf=NOW + LEEWAY)))
    await refused(verifier, rsa_key.mint(claims(nbf=NOW + LEEWAY + 1)), "token not yet valid")
    assert await verifier.verify(rsa_key.mint(claims(iat=NOW + LEEWAY)))
    await refused(verifier, rsa_key.mint(claims(iat=NOW + LEEWAY + 1)), "token issued in the future")
    await refused(verifier, rsa_key.mint(claims(nbf="soon")), "token nbf is not a number")


async def test_without_leeway(make: Make, rsa_key: SigningKey) -> None:
    verifier = await make(leeway_s=0)
    assert await verifier.verify(rsa_key.mint(claims(exp=NOW + 1)))
    await refused(verifier, rsa_key.mint(claims(exp=NOW)), "token expired")
    await refused(verifier, rsa_key.mint(claims(nbf=NOW + 1)), "token not yet valid")


# -- caches ----------------------------------------------------------------------------------------


async def test_a_repeated_token_is_checked_once_until_it_expires(make: Make, rsa_key: SigningKey) -> None:
    clock = Clock()
    verifier = await make(clock=clock)
    token = rsa_key.mint(claims(exp=NOW + 60))
    first = await verifier.verify(token)
    for _ in range(100):
        assert await verifier.verify(token) is first
    assert (verifier.stats.checks, verifier.stats.hits) == (1, 100)
    clock.now = NOW + 60 + LEEWAY - 1
    assert await verifier.verify(token) is first
    clock.now = NOW + 60 + LEEWAY
    await refused(verifier, token, "token expired")
    assert verifier.stats.checks == 2


async def test_a_flood_of_one_bad_token_is_refused_from_the_cache(make: Make, rsa_key: SigningKey) -> None:
    clock = Clock()
    verifier = await make(clock=clock)
    token = rsa_key.mint(claims(aud="wrong"))
    for _ in range(100):
        await refused(verifier, token, "token audience not accepted")
    assert (verifier.stats.checks, verifier.stats.refusal_hits) == (1, 99)
    clock.now += 6  # refusals are kept a few seconds
    await refused(verifier, token, "token audience not accepted")
    assert verifier.stats.checks == 2


async def test_a_withdrawn_key_drops_its_cached_tokens(
    make: Make, idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey, new_key: SigningKey
) -> None:
    clock = Clock()
    verifier = await make(clock=clock)
    rsa_token, ec_token = rsa_key.mint(claims()), ec_key.mint(claims())
    await verifier.verify(rsa_token)
    await verifier.verify(ec_token)
    idp.set_keys([ec_key, new_key])  # rsa-1 withdrawn
    clock.now += 11
    await verifier.verify(new_key.mint(claims()))  # unknown kid: a refetch
    await refused(verifier, rsa_token, "token key id unknown")
    hits = verifier.stats.hits
    await verifier.verify(ec_token)
    assert verifier.stats.hits == hits + 1


# -- the JWKS: rotation, refetch limits, failures ---------------------------------------------------


async def test_rotation_at_the_idp_is_picked_up_on_an_unknown_kid(
    make: Make, idp: JwksServer, rsa_key: SigningKey, new_key: SigningKey
) -> None:
    clock = Clock()
    verifier = await make(clock=clock)
    assert idp.fetches == 1
    idp.set_keys([new_key])
    token = new_key.mint(claims())
    # Within jwks_min_refresh_s of the last load the IdP is not asked again.
    await refused(verifier, token, "token key id unknown")
    assert idp.fetches == 1
    clock.now += 11  # past jwks_min_refresh_s (10 s); the refusal cache is dropped with the new keys
    assert (await verifier.verify(token)).id == "jwt:u-42"
    assert idp.fetches == 2


async def test_rotation_in_the_jwks_file(
    make: Make, jwks_file: Path, rsa_key: SigningKey, new_key: SigningKey
) -> None:
    clock = Clock()
    verifier = await make("file", clock=clock)
    await asyncio.to_thread(jwks_file.write_bytes, orjson.dumps(jwks_document([new_key])))
    clock.now += 11
    assert (await verifier.verify(new_key.mint(claims()))).id == "jwt:u-42"
    await refused(verifier, rsa_key.mint(claims()), "token key id unknown")


async def test_random_kids_cannot_hammer_the_idp(make: Make, idp: JwksServer, rsa_key: SigningKey) -> None:
    clock = Clock()
    verifier = await make(clock=clock, jwks_min_refresh_s=10)
    clock.now += 11
    tokens = [rsa_key.mint(claims(), kid=uuid.uuid4().hex) for _ in range(200)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert idp.fetches == 2  # the start, then one refetch for all 200
    clock.now += 5
    await refused(verifier, rsa_key.mint(claims(), kid="again"), "token key id unknown")
    assert idp.fetches == 2
    clock.now += 6
    await refused(verifier, rsa_key.mint(claims(), kid="later"), "token key id unknown")
    assert idp.fetches == 3


async def test_a_failed_refresh_keeps_the_last_good_keys(
    make: Make, idp: JwksServer, rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    verifier = await make(clock=clock)
    for failure in (503, "garbage", "huge", "no keys"):
        if failure == 503:
            idp.fail_with(503)
        else:
            idp.fail_with(None)
            bodies = {
                "garbage": b"<html>",
                "huge": b'{"keys": [], "pad": "' + b"a" * (1024 * 1024) + b'"}',
                "no keys": orjson.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hs"}]}),
            }
            idp.set_body(bodies[str(failure)])
        clock.now += 11
        assert not await verifier.jwks.refetch()
        assert (await verifier.verify(rsa_key.mint(claims(sub=f"s{failure}")))).role == "client"
    warnings = [r for r in caplog.records if r.name == "ccrouter.auth.jwt"]
    assert len(warnings) == 1  # rate limited: one line a minute
    assert "503" in warnings[0].getMessage()
    assert "keeping the last good keys" in warnings[0].getMessage()


async def test_an_unreachable_idp_at_start_refuses_until_it_answers(
    rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    clock = Clock()
    async with JwksServer([rsa_key]) as idp:
        idp.fail_with(500)
        verifier = JwtVerifier(config(jwks_url=idp.url), clock=clock)
        await verifier.start()
        try:
            await refused(verifier, rsa_key.mint(claims()), "no signing keys available")
            idp.fail_with(None)
            clock.now += 11
            assert (await verifier.verify(rsa_key.mint(claims()))).id == "jwt:u-42"
        finally:
            await verifier.aclose()


async def test_a_slow_or_endless_idp_is_cut_off(rsa_key: SigningKey) -> None:
    """``jwks_timeout_s`` bounds a fetch; a body past 1 MB without a content-length is refused as it
    streams (the last good keys stay)."""
    clock = Clock()
    async with JwksServer([rsa_key]) as idp:
        idp.delay_s = 1.0
        verifier = JwtVerifier(config(jwks_url=idp.url, jwks_timeout_s=0.2), clock=clock)
        started = asyncio.get_running_loop().time()
        await verifier.start()
        try:
            assert asyncio.get_running_loop().time() - started < 0.8
            await refused(verifier, rsa_key.mint(claims()), "no signing keys available")
            idp.delay_s = 0.0
            clock.now += 11
            assert (await verifier.verify(rsa_key.mint(claims(sub="later")))).id == "jwt:later"
            generation = verifier.jwks.generation
            # A valid key set (another key beside ours), padded past the bound.
            huge = {**jwks_document([rsa_key, SigningKey.ec("ec-9")]), "pad": "a" * (2 * 1024 * 1024)}
            idp.set_body(orjson.dumps(huge), chunked=True)
            clock.now += 11
            assert not await verifier.jwks.refetch()
            assert verifier.jwks.generation == generation
            assert (await verifier.verify(rsa_key.mint(claims(sub="still")))).id == "jwt:still"
        finally:
            await verifier.aclose()


async def test_a_bad_jwks_file_fails_at_start(tmp_path: Path) -> None:
    missing = JwtVerifier(config(jwks_file=str(tmp_path / "missing.json")))
    with pytest.raises(ConfigError, match="jwks_file"):
        await missing.start()
    path = tmp_path / "bad.json"
    await asyncio.to_thread(path.write_bytes, b'{"keys": "none"}')
    with pytest.raises(ConfigError, match="jwks_file"):
        await JwtVerifier(config(jwks_file=str(path))).start()


async def test_the_background_refresh(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = JwtVerifier(config(jwks_url=idp.url, jwks_refresh_s=0.05))
    await verifier.start()
    try:
        for _ in range(100):
            if idp.fetches >= 3:
                break
            await asyncio.sleep(0.02)
        assert idp.fetches >= 3
    finally:
        await verifier.aclose()
    fetched = idp.fetches
    await asyncio.sleep(0.15)
    assert idp.fetches == fetched  # aclose stopped it


# -- shape -----------------------------------------------------------------------------------------


def test_looks_like_jwt(rsa_key: SigningKey) -> None:
    assert JwtVerifier.looks_like_jwt(rsa_key.mint(claims()))
    assert JwtVerifier.looks_like_jwt("a.b.")
    for text in ("ccr-abc", "a.b", "a.b.c.d", ".b.c", "a b.c.d", "a.b.c=", "é.b.c", ""):
        assert not JwtVerifier.looks_like_jwt(text), text
