"""The sample events in events/ (the single source used by tests and `sam local invoke -e`) and
the Lambda context handlers are called with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """Return the parsed events/<name>.json."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return event


def with_body(event: dict[str, Any], body: dict[str, Any] | str) -> dict[str, Any]:
    """A copy of a sample HTTP API event with another body."""
    return {**event, "body": body if isinstance(body, str) else json.dumps(body)}


@dataclass(frozen=True)
class FakeLambdaContext:
    """What the handlers read from Lambda's context object."""

    function_name: str = "PurchaseFunction"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:PurchaseFunction"
    aws_request_id: str = "5b7e9a3c-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000
