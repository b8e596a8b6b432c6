"""The Responses API wire as ccrouter speaks it upstream, as TypedDicts (what the codecs build and
read; the OpenAI SDK's ``openai.types.responses`` is the full reference, checked by the tests).

Only the fields ccrouter sends or reads are listed; a response may carry many more, which the
decoders ignore. Reference: https://platform.openai.com/docs/api-reference/responses/create
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputContent",
    "InputItem",
    "MessageItem",
    "ReasoningConfig",
    "ReasoningItem",
    "ResponsesRequest",
    "SummaryText",
    "ToolChoice",
]


class InputText(TypedDict):
    type: Literal["input_text"]
    text: str


class OutputText(TypedDict):
    type: Literal["output_text"]
    text: str


class InputImage(TypedDict):
    type: Literal["input_image"]
    # An https URL or a ``data:<mime>;base64,...`` URL.
    image_url: str
    detail: Literal["low", "high", "auto"]


class InputFile(TypedDict):
    type: Literal["input_file"]
    filename: str
    # ``data:<mime>;base64,...``.
    file_data: str


InputContent = InputText | OutputText | InputImage | InputFile


class MessageItem(TypedDict):
    """A user turn (``input_*`` parts) or an earlier assistant turn (``output_text`` parts)."""

    type: Literal["message"]
    role: Literal["user", "assistant", "system", "developer"]
    content: list[InputContent]


class FunctionCallItem(TypedDict):
    """A tool call the model made in an earlier turn; ``arguments`` is a JSON text."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(TypedDict):
    type: Literal["function_call_output"]
    call_id: str
    output: str


class SummaryText(TypedDict):
    type: Literal["summary_text"]
    text: str


class ReasoningItem(TypedDict):
    """Reasoning of an earlier turn sent back (stateless: its ``encrypted_content``, see ``request``)."""

    type: Literal["reasoning"]
    id: str
    summary: list[SummaryText]
    encrypted_content: NotRequired[str]


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem


class FunctionTool(TypedDict):
    type: Literal["function"]
    name: str
    description: NotRequired[str]
    parameters: dict[str, object]
    # Required by the API; strict mode would reject the usual optional-property schemas.
    strict: bool


class FunctionChoice(TypedDict):
    type: Literal["function"]
    name: str


ToolChoice = Literal["auto", "required", "none"] | FunctionChoice


class ReasoningConfig(TypedDict):
    effort: Literal["minimal", "low", "medium", "high"]
    summary: Literal["auto", "concise", "detailed"]


class ResponsesRequest(TypedDict):
    model: str
    input: list[InputItem]
    store: bool
    instructions: NotRequired[str]
    tools: NotRequired[list[FunctionTool]]
    tool_choice: NotRequired[ToolChoice]
    parallel_tool_calls: NotRequired[bool]
    max_output_tokens: NotRequired[int]
    temperature: NotRequired[float]
    top_p: NotRequired[float]
    reasoning: NotRequired[ReasoningConfig]
    include: NotRequired[list[str]]
    stream: NotRequired[bool]
