from __future__ import annotations

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from ccrouter.messages import Message, MessagesRequest, TextBlock, Usage
from ccrouter.routing.session import SessionUsage, session_id

SESSION = "3f0c2a9e-5d1b-4c7e-9a51-0d6b7e8f9a10"


def _request(user_id: object = None) -> MessagesRequest:
    metadata = {} if user_id is None else {"user_id": user_id}
    return MessagesRequest(
        model="claude-sonnet-4-5",
        max_tokens=10,
        messages=[Message("user", [TextBlock("hi")])],
        metadata=metadata,
    )


def test_header_wins() -> None:
    request = _request(orjson.dumps({"session_id": "from-metadata"}).decode())
    assert session_id(request, {"x-claude-code-session-id": SESSION}) == SESSION


def test_header_lookup_ignores_case_in_a_plain_dict() -> None:
    assert session_id(_request(), {"X-Claude-Code-Session-Id": SESSION}) == SESSION


def test_header_lookup_ignores_case_in_the_server_headers() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"X-Claude-Code-Session-Id": SESSION}))
    assert session_id(_request(), headers) == SESSION
    assert session_id(_request(), CIMultiDictProxy(CIMultiDict())) is None


def test_json_user_id() -> None:
    user_id = orjson.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": SESSION}).decode()
    assert session_id(_request(user_id), {}) == SESSION


def test_legacy_user_id() -> None:
    user_id = f"user_{'a' * 64}_account_7c1e0d2a-0000-4000-8000-000000000000_session_{SESSION}"
    assert session_id(_request(user_id), {}) == SESSION


@pytest.mark.parametrize(
    "user_id",
    [None, "", "user_abc_account_def", "{not json", '{"device_id": "d"}', '{"session_id": 5}', 42, '["x"]'],
)
def test_no_session(user_id: object) -> None:
    assert session_id(_request(user_id), {"x-claude-code-session-id": "  "}) is None


def test_usage_records_all_input_kinds() -> None:
    sessions = SessionUsage()
    assert sessions.last_input(SESSION) is None
    usage = Usage(
        input_tokens=12, output_tokens=900, cache_read_input_tokens=70_000, cache_creation_input_tokens=3_000
    )
    sessions.record(SESSION, usage)
    assert sessions.last_input(SESSION) == 73_012
    sessions.record(SESSION, Usage(input_tokens=5))
    assert sessions.last_input(SESSION) == 5


def test_empty_usage_keeps_the_last_figure() -> None:
    sessions = SessionUsage()
    sessions.record(SESSION, Usage(input_tokens=100))
    sessions.record(SESSION, Usage())
    assert sessions.last_input(SESSION) == 100


def test_usage_map_is_bounded_lru() -> None:
    sessions = SessionUsage(max_sessions=2)
    sessions.record("a", Usage(input_tokens=1))
    sessions.record("b", Usage(input_tokens=2))
    sessions.record("a", Usage(input_tokens=3))  # "a" is now the most recent
    sessions.record("c", Usage(input_tokens=4))
    assert len(sessions) == 2
    assert sessions.last_input("b") is None
    assert (sessions.last_input("a"), sessions.last_input("c")) == (3, 4)
