"""A third-party plugin for the tests, loaded by path through ``plugins:`` in the config.

- a ranking strategy ``reverse``: within each tier, the configured order backwards (observable as
  the fallback order); ``broken``: a strategy that raises while ranking;
- a routing rule (asked at its default place, before the feature scenarios): a request for the model
  ``to-b`` goes to provider ``b``; ``rule-explode`` makes it raise;
- a pre-dispatch answer: a request whose last user text is ``ping`` gets ``pong`` without any
  provider; ``explode`` makes it raise, ``refuse`` refuses the request with a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ccrouter.config import RoutingConfig, Settings
from ccrouter.errors import RequestError
from ccrouter.exchange import Exchange, PreDispatch
from ccrouter.hookspecs import hookimpl
from ccrouter.messages import MessagesRequest, MessagesResponse, TextBlock, Usage
from ccrouter.routing.rules import RouteDecision, RoutingRule, RuleContext
from ccrouter.routing.strategies import Factor, RankingPolicy, Scored, Strategy, StrategyFactory


def _later_first(item: Scored, everyone: Sequence[Scored]) -> float:
    last = max(s.priority for s in everyone)
    return item.priority / last if last > 0 else 1.0


REVERSE = Strategy("reverse", Factor("later", _later_first) * 1.0)


class Broken:
    name = "broken"

    def rank(self, items: list[Scored]) -> list[Scored]:
        raise ZeroDivisionError("the broken strategy")


def _reverse(config: RoutingConfig) -> RankingPolicy:
    return REVERSE


def _broken(config: RoutingConfig) -> RankingPolicy:
    return Broken()


@hookimpl
def register_strategies(register: Callable[[str, StrategyFactory], None]) -> None:
    register("reverse", _reverse)
    register("broken", _broken)


class ToB:
    name = "to-b"

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        if request.model == "rule-explode":
            raise KeyError("the rule")
        if request.model != "to-b":
            return None
        model = context.settings.router.default.partition(",")[2]
        return context.decide("plugin", f"b,{model}", "the test plugin sends to-b to b")


@hookimpl
def register_routing_rules(register: Callable[[RoutingRule], None], settings: Settings) -> None:
    register(ToB())


def _last_user_text(request: MessagesRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return "".join(block.text for block in message.content if isinstance(block, TextBlock))
    return ""


class Pong:
    name = "pong"

    async def answer(self, request: MessagesRequest, exchange: Exchange) -> MessagesResponse | None:
        text = _last_user_text(request).strip()
        if text == "explode":
            raise RuntimeError("the answer")
        if text == "refuse":
            raise RequestError("the test plugin refuses this request")
        if text != "ping":
            return None
        usage = Usage(input_tokens=7, output_tokens=1, cache_read_input_tokens=2)
        return MessagesResponse(id="msg_pong", model=request.model, content=[TextBlock("pong")], usage=usage)


ANSWERER: PreDispatch = Pong()


@hookimpl
def register_pre_dispatch(register: Callable[[PreDispatch], None], settings: Settings) -> None:
    register(ANSWERER)
