"""The dashboard's session cookies (``ccrouter.ui.session``): sealed, tamper-evident, expiring."""

from __future__ import annotations

from pydantic import SecretStr

from ccrouter.config import UiConfig
from ccrouter.ui.session import Session, SessionCodec, csrf_matches, session_codec

NOW = 1_800_000_000.0


def test_a_sealed_session_opens_to_what_it_holds() -> None:
    codec = SessionCodec(b"secret", ttl_s=3600)
    cookie, session = codec.seal("ccr-the-credential", now=NOW)
    assert "ccr-the-credential" not in cookie
    assert codec.open(cookie, now=NOW + 10) == session
    assert session.expires_at == NOW + 3600
    assert len(session.csrf) >= 32


def test_expired_tampered_foreign_and_junk_cookies_open_to_nothing() -> None:
    codec = SessionCodec(b"secret", ttl_s=60)
    cookie, _ = codec.seal("key", now=NOW)
    assert codec.open(cookie, now=NOW + 61) is None
    flipped = cookie[:-6] + ("A" if cookie[-6] != "A" else "B") + cookie[-5:]
    assert codec.open(flipped, now=NOW) is None
    assert SessionCodec(b"other secret", ttl_s=60).open(cookie, now=NOW) is None
    for junk in ("", "x", "é" * 10, "A" * 5000, "gAAAAA" + "=" * 40):
        assert codec.open(junk, now=NOW) is None


def test_the_configured_secret_is_shared_by_every_instance() -> None:
    ui = UiConfig(session_secret=SecretStr("one secret for every instance"))
    cookie, session = session_codec(ui).seal("key")
    assert session_codec(ui).open(cookie) == session
    # Without one, each start has its own: this process's codecs agree with each other.
    assert session_codec(UiConfig()).open(session_codec(UiConfig()).seal("key")[0]) is not None
    assert session_codec(UiConfig()).open(cookie) is None


def test_csrf_tokens_match_only_exactly() -> None:
    session = Session("key", "token-abc", NOW)
    assert csrf_matches(session, "token-abc")
    assert not csrf_matches(session, "token-abd")
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
