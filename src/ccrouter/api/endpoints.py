"""The client-facing endpoints, described once. (Interface only so far.)"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Endpoint"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    # The closed label the ledger and the metrics carry ("messages", "chat_completions"...).
    name: str
