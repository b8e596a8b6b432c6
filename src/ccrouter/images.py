"""The image agent: images described by a vision model for a target that cannot see them.

With ``router.image_agent: provider,model`` set, each candidate the cascade tries whose model has no
vision (``ModelInfo.vision``: the catalog, overridden by ``providers[].models[].vision``; a model
the catalog does not know counts as without vision) gets the request with every image block (in
user messages and in tool results) replaced by a text block ``[Image: <description>]``.

- One vision call per distinct image (keyed by a hash of its base64 data and media type, or of
  its URL), at most ``image_agent_concurrency`` at once, each through the dispatcher
  (``ModelCalls``): fallbacks of the ``image_agent`` scenario, limits, breakers and budgets apply,
  and each call is a ledger row of scenario ``image_agent`` with the parent's session and key.
- Descriptions are kept in a bounded LRU per configuration (a reload starts a new one), keyed by
  the vision route, the prompt and the image: a session resending the same screenshot every turn
  pays for it once.
- URL images are never fetched by the gateway (no server-side request to a client-chosen address):
  they go to the vision model as URLs, which every wire format ccrouter speaks can carry.
- Past ``image_agent_max_images`` distinct images to describe in one request, or an image larger
  than ``image_agent_max_bytes``, the image becomes a note saying why it was not described.
- A vision call that fails (after its fallbacks) fails the request with that error, in the
  client's envelope, naming the image agent: the model is not silently served a request without
  the image the user sent. Nothing is cached for it, so a retry tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Iterator

from ccrouter.catalog import ModelInfo
from ccrouter.config import RouterConfig
from ccrouter.errors import CCRouterError
from ccrouter.exchange import Exchange, ModelCalls
from ccrouter.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    ToolResultBlock,
    ToolResultPart,
)
from ccrouter.transformers.base import detached

__all__ = ["SCENARIO", "DescriptionCache", "ImageAgent", "has_images"]

SCENARIO = "image_agent"
_CACHE_ENTRIES = 1024


def has_images(request: MessagesRequest) -> bool:
    """Whether any user message or tool result of ``request`` holds an image."""
    for message in request.messages:
        for block in message.content:
            if isinstance(block, ImageBlock):
                return True
            if isinstance(block, ToolResultBlock) and any(isinstance(p, ImageBlock) for p in block.content):
                return True
    return False


class DescriptionCache:
    """Image key -> description, the least recently used dropped past ``limit`` entries."""

    def __init__(self, limit: int = _CACHE_ENTRIES) -> None:
        self._limit = limit
        self._items: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, description: str) -> None:
        self._items[key] = description
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ImageAgent:
    """The ``TargetStep`` of ``router.image_agent`` (see the module docstring)."""

    name = "image_agent"

    def __init__(self, router: RouterConfig, cache: DescriptionCache | None = None) -> None:
        assert router.image_agent is not None
        provider, _, model = (part.strip() for part in router.image_agent.partition(","))
        self.route = f"{provider},{model}"
        self._model = model
        self._config = router
        self.cache = cache if cache is not None else DescriptionCache()
        salt = f"{self.route}\0{router.image_agent_prompt}\0{router.image_agent_max_tokens}\0"
        self._salt = salt.encode()

    def wants(self, request: MessagesRequest, info: ModelInfo) -> bool:
        return not info.vision and has_images(request)

    async def prepare(
        self, request: MessagesRequest, exchange: Exchange, calls: ModelCalls
    ) -> MessagesRequest:
        texts = await self._describe_all(request, exchange, calls)
        prepared = detached(request)
        prepared.messages = [_replaced(message, texts) for message in request.messages]
        return prepared

    async def _describe_all(
        self, request: MessagesRequest, exchange: Exchange, calls: ModelCalls
    ) -> dict[int, str]:
        """id(image block) -> the text that replaces it."""
        config = self._config
        texts: dict[int, str] = {}
        wanted: dict[str, list[int]] = {}
        todo: dict[str, ImageBlock] = {}
        for image in _images(request):
            if len(image.data or image.url or "") * 3 // 4 > config.image_agent_max_bytes:
                texts[id(image)] = "[Image: not described: larger than router.image_agent_max_bytes]"
                continue
            key = self._key(image)
            cached = self.cache.get(key)
            if cached is not None:
                texts[id(image)] = _text(cached)
                continue
            if key not in todo and len(todo) >= config.image_agent_max_images:
                texts[id(image)] = (
                    "[Image: not described: more than router.image_agent_max_images images in one request]"
                )
                continue
            todo.setdefault(key, image)
            wanted.setdefault(key, []).append(id(image))
        if todo:
            gate = asyncio.Semaphore(config.image_agent_concurrency)
            keys = list(todo)

            async def one(key: str) -> str:
                async with gate:
                    return await self._describe(todo[key], exchange, calls)

            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(one(key)) for key in keys]
            except BaseExceptionGroup as failed:
                # The first failure is the request's error (the others were cancelled with it).
                raise failed.exceptions[0] from None
            for key, task in zip(keys, tasks, strict=True):
                description = task.result()
                self.cache.put(key, description)
                for block_id in wanted[key]:
                    texts[block_id] = _text(description)
        return texts

    async def _describe(self, image: ImageBlock, exchange: Exchange, calls: ModelCalls) -> str:
        source = ImageBlock(media_type=image.media_type, data=image.data, url=image.url)
        vision = MessagesRequest(
            model=self._model,
            messages=[Message("user", [source, TextBlock(self._config.image_agent_prompt)])],
            max_tokens=self._config.image_agent_max_tokens,
        )
        try:
            response = await calls.call(vision, self.route, scenario=SCENARIO, parent=exchange)
        except CCRouterError as exc:
            exc.message = f"image agent: describing an image with {self.route} failed: {exc.message}"
            exc.args = (exc.message,)
            raise
        text = " ".join(b.text.strip() for b in response.content if isinstance(b, TextBlock)).strip()
        return text or "(the vision model gave no description)"

    def _key(self, image: ImageBlock) -> str:
        digest = hashlib.sha256(self._salt)
        if image.data is not None:
            digest.update(f"data:{image.media_type}\0".encode())
            digest.update(image.data.encode())
        else:
            digest.update(f"url:{image.url}".encode())
        return digest.hexdigest()


def _text(description: str) -> str:
    return f"[Image: {description}]"


def _images(request: MessagesRequest) -> Iterator[ImageBlock]:
    for message in request.messages:
        for block in message.content:
            if isinstance(block, ImageBlock):
                yield block
            elif isinstance(block, ToolResultBlock):
                yield from (part for part in block.content if isinstance(part, ImageBlock))


def _replaced(message: Message, texts: dict[int, str]) -> Message:
    """``message`` with its images as text: a new message only where one changed."""
    changed = False
    content: list[ContentBlock] = []
    for block in message.content:
        new = _replaced_block(block, texts)
        changed = changed or new is not block
        content.append(new)
    return Message(message.role, content) if changed else message


def _replaced_block(block: ContentBlock, texts: dict[int, str]) -> ContentBlock:
    if isinstance(block, ImageBlock):
        return TextBlock(texts[id(block)], cache_control=block.cache_control)
    if isinstance(block, ToolResultBlock) and any(isinstance(p, ImageBlock) for p in block.content):
        parts: list[ToolResultPart] = [
            TextBlock(texts[id(p)], cache_control=p.cache_control) if isinstance(p, ImageBlock) else p
            for p in block.content
        ]
        return ToolResultBlock(block.tool_use_id, parts, block.is_error, block.cache_control)
    return block
