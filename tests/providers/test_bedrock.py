"""The Bedrock provider against the shipped fake Bedrock: URLs and bodies, SigV4 signatures checked
by the fake, InvokeModel and Converse (streamed and not), Bedrock's errors mapped to ours, broken
event streams, and credentials from botocore's chain (a container credentials endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ccrouter.config import ProviderConfig
from ccrouter.errors import (
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamProtocolError,
    UpstreamRateLimitError,
    UpstreamStatusError,
)
from ccrouter.messages import (
    BlockDelta,
    BlockStart,
    InputJsonDelta,
    Message,
    MessageDelta,
    MessagesRequest,
    MessageStop,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolUseBlock,
)
from ccrouter.providers.bedrock import BedrockProvider, endpoint, is_claude, model_url, open_bedrock
from ccrouter.testing import FakeBedrock, Fault, Reply, StreamFault, ToolCall

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
KEY, SECRET = "AKIDFAKEEXAMPLE00001", "fake-secret-key-for-tests-0123456789abcd"


@pytest.fixture
async def bedrock() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock(region="eu-west-1", keys={KEY: SECRET}, rate_limit_headers=False) as server:
        yield server


def _config(bedrock: FakeBedrock, **extra: Any) -> ProviderConfig:
    values: dict[str, Any] = {
        "name": "br",
        "type": "bedrock",
        "region": "eu-west-1",
        "base_url": bedrock.url,
        "models": [CLAUDE, NOVA],
        "aws_access_key_id": KEY,
        "aws_secret_access_key": SECRET,
    }
    values.update(extra)
    return ProviderConfig.model_validate(values)


@pytest.fixture
async def provider(bedrock: FakeBedrock) -> AsyncIterator[BedrockProvider]:
    opened = await open_bedrock(_config(bedrock), None)  # type: ignore[arg-type]  # unused registry
    yield opened
    await opened.aclose()


def _request(text: str = "hi", **extra: Any) -> MessagesRequest:
    return MessagesRequest(
        model="m", messages=[Message(role="user", content=[TextBlock(text=text)])], max_tokens=100, **extra
    )


async def _collect(provider: BedrockProvider, model: str, request: MessagesRequest) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    async for batch in provider.stream(request, model):
        events.extend(batch)
    return events


async def _drain(batches: AsyncIterator[list[StreamEvent]]) -> None:
    async for _batch in batches:
        pass


def _text(events: list[StreamEvent]) -> str:
    return "".join(
        e.delta.text for e in events if isinstance(e, BlockDelta) and isinstance(e.delta, TextDelta)
    )


def test_endpoints_model_urls_and_claude_ids() -> None:
    assert endpoint("us-west-2") == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert endpoint("us-west-2", "https://vpce-1.bedrock-runtime.us-west-2.vpce.amazonaws.com/") == (
        "https://vpce-1.bedrock-runtime.us-west-2.vpce.amazonaws.com"
    )
    assert model_url("https://h", "anthropic.claude-3-haiku-20240307-v1:0", "invoke") == (
        "https://h/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-1-v1:0"
    assert model_url("https://h", arn, "converse") == (
        "https://h/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
        "%2Fus.anthropic.claude-opus-4-1-v1%3A0/converse"
    )
    for claude in (CLAUDE, "anthropic.claude-v2", "global.anthropic.claude-x", "apac.anthropic.c", arn):
        assert is_claude(claude), claude
    for other in (NOVA, "meta.llama3-70b-instruct-v1:0", "us.deepseek.r1-v1:0", "mistral.anthropic-like"):
        assert not is_claude(other), other


def test_the_config_needs_a_region_and_whole_key_pairs() -> None:
    base = {"name": "b", "type": "bedrock"}
    with pytest.raises(ValueError, match="needs region"):
        ProviderConfig.model_validate(base)
    with pytest.raises(ValueError, match="go together"):
        ProviderConfig.model_validate({**base, "region": "us-east-1", "aws_access_key_id": "AKID"})
    with pytest.raises(ValueError, match="not both"):
        ProviderConfig.model_validate(
            {
                **base,
                "region": "us-east-1",
                "aws_profile": "p",
                "aws_access_key_id": "A",
                "aws_secret_access_key": "s",
            }
        )
    config = ProviderConfig.model_validate(
        {
            **base,
            "region": "us-east-1",
            "aws_access_key_id": "A",
            "aws_secret_access_key": "s3cr3t-value-x",
            "aws_session_token": "tok-value-123456",
        }
    )
    assert [s.get_secret_value() for s in config.secrets()] == ["s3cr3t-value-x", "tok-value-123456"]
    assert config.credentials() == [None]  # one identity: no pool of keys to rotate


async def test_claude_through_invoke_model(bedrock: FakeBedrock, provider: BedrockProvider) -> None:
    bedrock.script(Reply(text="Hello from Bedrock"))
    request = _request(system=[TextBlock(text="be brief", cache_control={"type": "ephemeral"})])
    request.betas = "claude-code-20250219,interleaved-thinking-2025-05-14"
    response = await provider.complete(request, CLAUDE)
    assert response.content == [TextBlock(text="Hello from Bedrock")]
    (record,) = bedrock.requests
    assert record.path == f"/model/{CLAUDE}/invoke"
    assert record.wire == "anthropic"
    assert isinstance(record.body, dict)
    assert record.body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in record.body
    assert "stream" not in record.body
    assert record.body["system"] == [
        {"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}
    ]
    # Only the betas Bedrock takes, in the body.
    assert record.body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    assert record.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
    assert "/eu-west-1/bedrock/aws4_request" in record.headers["authorization"]


async def test_claude_streamed_through_the_event_stream(
    bedrock: FakeBedrock, provider: BedrockProvider
) -> None:
    bedrock.script(Reply(tool_calls=[ToolCall("Bash", {"command": "ls"}, id="toolu_9")], chunk_size=3))
    events = await _collect(provider, CLAUDE, _request())
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert isinstance(starts[0].block, ToolUseBlock)
    assert starts[0].block.name == "Bash"
    arguments = "".join(
        e.delta.partial_json
        for e in events
        if isinstance(e, BlockDelta) and isinstance(e.delta, InputJsonDelta)
    )
    assert arguments == '{"command":"ls"}'
    delta = next(e for e in events if isinstance(e, MessageDelta))
    assert delta.stop_reason == "tool_use"
    assert isinstance(events[-1], MessageStop)
    # Each event keeps an Anthropic SSE frame, so an Anthropic client gets the bytes as they came.
    assert all(e.raw and e.raw.startswith(b"event: ") for e in events)
    assert bedrock.requests[0].path == f"/model/{CLAUDE}/invoke-with-response-stream"


async def test_other_models_through_converse(bedrock: FakeBedrock, provider: BedrockProvider) -> None:
    bedrock.script(
        Reply(text="Nova says hi", input_tokens=11, output_tokens=4),
        Reply(text="streamed Nova", chunk_size=4, input_tokens=7, output_tokens=3),
    )
    response = await provider.complete(_request(temperature=0.2), NOVA)
    assert response.content == [TextBlock(text="Nova says hi")]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 4)
    events = await _collect(provider, NOVA, _request())
    assert _text(events) == "streamed Nova"
    delta = next(e for e in events if isinstance(e, MessageDelta))
    assert delta.stop_reason == "end_turn"
    assert (delta.usage.input_tokens, delta.usage.output_tokens) == (7, 3)
    unary, streamed = bedrock.requests
    assert unary.path == f"/model/{NOVA}/converse"
    assert streamed.path == f"/model/{NOVA}/converse-stream"
    assert isinstance(unary.body, dict)
    assert unary.body["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2}
    assert unary.body["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


async def test_a_wrong_secret_is_refused_by_the_signature_check(bedrock: FakeBedrock) -> None:
    provider = await open_bedrock(_config(bedrock, aws_secret_access_key="not-the-secret"), None)  # type: ignore[arg-type]
    try:
        with pytest.raises(UpstreamStatusError, match="InvalidSignatureException") as caught:
            await provider.complete(_request(), CLAUDE)
    finally:
        await provider.aclose()
    assert caught.value.status == 403
    assert "not-the-secret" not in caught.value.message


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (429, "ThrottlingException", UpstreamRateLimitError),
        (503, "ServiceUnavailableException", UpstreamOverloadedError),
        (400, "ValidationException", UpstreamStatusError),
        (424, "ModelErrorException", UpstreamStatusError),
    ],
)
async def test_bedrock_errors_are_mapped(
    bedrock: FakeBedrock, provider: BedrockProvider, status: int, kind: str, error: type[UpstreamError]
) -> None:
    bedrock.script(Fault("status", status=status, retry_after=3 if status == 429 else None))
    with pytest.raises(error, match=kind) as caught:
        await provider.complete(_request(), CLAUDE)
    if status == 424:
        assert caught.value.status == 502  # the model failed, not the request: the next candidate
    if status == 429:
        assert caught.value.retry_after == 3


async def test_an_exception_message_mid_stream_raises_after_the_events_before_it(
    bedrock: FakeBedrock, provider: BedrockProvider
) -> None:
    bedrock.script(Fault("stream_error", status=429, after_chunks=3, reply=Reply(text="partial answer")))
    batches = provider.stream(_request(), CLAUDE)
    first = await anext(batches)
    assert first, "the events before the exception came out"
    with pytest.raises(UpstreamRateLimitError, match="ThrottlingException"):
        await _drain(batches)


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("bad_message_crc", "message checksum mismatch"),
        ("bad_prelude_crc", "prelude checksum mismatch"),
        ("truncated", "truncated|connection failed"),
        ("unknown_event", "ended before message_stop"),
        ("exception", "ModelStreamErrorException"),
    ],
)
@pytest.mark.parametrize("model", [CLAUDE, NOVA])
async def test_broken_event_streams_end_in_an_error(
    bedrock: FakeBedrock, provider: BedrockProvider, kind: Any, match: str, model: str
) -> None:
    bedrock.stream_faults(StreamFault(kind, after=2))
    if kind == "unknown_event" and model == NOVA:
        match = "ended before messageStop"
    with pytest.raises(UpstreamError, match=match) as caught:
        await _collect(provider, model, _request())
    assert caught.value.provider == "br"
    if kind != "exception":
        assert isinstance(caught.value, UpstreamProtocolError | UpstreamError)


@pytest.mark.parametrize("model", [CLAUDE, NOVA])
async def test_unknown_fields_everywhere_are_ignored(
    bedrock: FakeBedrock, provider: BedrockProvider, model: str
) -> None:
    bedrock.script(Reply(text="still fine"))
    bedrock.stream_faults(StreamFault("hidden_fields"))
    events = await _collect(provider, model, _request())
    assert _text(events) == "still fine"


async def test_credentials_from_the_chain_refreshed_before_they_expire(
    bedrock: FakeBedrock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's chain with nothing but a container credentials endpoint (the fake's): no files, no
    # environment keys, never the instance metadata address.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", bedrock.url + "/_fake/credentials")
    # 14 minutes left: inside botocore's advisory window (15), so every call refreshes first.
    bedrock.credentials_expire_in = 14 * 60
    config = _config(bedrock, aws_access_key_id=None, aws_secret_access_key=None)
    provider = await open_bedrock(config, None)  # type: ignore[arg-type]
    try:
        await provider.complete(_request("one"), CLAUDE)
        await _collect(provider, NOVA, _request("two"))
        bedrock.credentials_expire_in = 3600.0
        await provider.complete(_request("three"), CLAUDE)
        await provider.complete(_request("four"), CLAUDE)
    finally:
        await provider.aclose()
    used = [
        record.headers["authorization"].split("Credential=")[1].split("/")[0] for record in bedrock.requests
    ]
    assert used[0] != used[1], "near expiry: refreshed before the second call"
    assert used[2] == used[3], "good for an hour: reused, not fetched again"
    assert set(used) <= {f"ASIAFAKE{n:08d}" for n in range(1, bedrock.issued + 1)}
    issued = bedrock.issued
    assert issued <= 4  # botocore's first fetch, then one refresh per call near expiry, none after
    assert all("x-amz-security-token" in record.headers for record in bedrock.requests)


async def test_no_credentials_anywhere_is_a_clean_error(
    bedrock: FakeBedrock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    provider = await open_bedrock(_config(bedrock, aws_access_key_id=None, aws_secret_access_key=None), None)  # type: ignore[arg-type]
    try:
        with pytest.raises(UpstreamError, match="could not get AWS credentials"):
            await provider.complete(_request(), CLAUDE)
    finally:
        await provider.aclose()
    assert bedrock.requests == []
