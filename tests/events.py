"""Loads the sample events in events/: the single source used by tests and `sam local invoke -e`."""

from __future__ import annotations

import json
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
