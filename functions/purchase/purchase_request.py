"""Parses and validates the POST /purchases body: the only place request errors are decided."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_USER_ID_LENGTH = 128
MAX_SHOW_ID_LENGTH = 256
MIN_QUANTITY = 1
MAX_QUANTITY = 10
DEFAULT_QUANTITY = 1
FIELDS = frozenset({"userId", "showId", "cardNumber", "quantity"})


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    user_id: str
    show_id: str
    # Kept only until the card is checked; never logged, never sent to the state machine.
    card_number: str
    quantity: int


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InvalidRequestError(Exception):
    """The body is not a valid purchase request; `errors` says which fields and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def parse_purchase(body: bytes | str | None) -> PurchaseRequest:
    """Return the purchase a body asks for, or raise InvalidRequestError listing every problem."""
    document = _load_json_object(body)
    errors = [
        FieldError(name, "is not a known field (expected userId, showId, cardNumber, quantity)")
        for name in sorted(set(document) - FIELDS)
    ]
    user_id = _text(document, "userId", MAX_USER_ID_LENGTH, errors)
    # Show names are stored NFC-normalised (flyer file names are too): "Café" typed either way
    # is the same show.
    show_id = unicodedata.normalize("NFC", _text(document, "showId", MAX_SHOW_ID_LENGTH, errors))
    card_number = document.get("cardNumber")
    if not isinstance(card_number, str):
        errors.append(FieldError("cardNumber", "is required and must be a string"))
        card_number = ""
    quantity = document.get("quantity", DEFAULT_QUANTITY)
    # bool is an int subclass in Python, but `true` is not a quantity.
    if type(quantity) is not int or not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        errors.append(
            FieldError("quantity", f"must be an integer from {MIN_QUANTITY} to {MAX_QUANTITY}")
        )
    if errors:
        raise InvalidRequestError(errors)
    return PurchaseRequest(user_id, show_id, card_number, quantity)


def _load_json_object(body: bytes | str | None) -> dict[str, Any]:
    if not body:
        raise InvalidRequestError([FieldError("body", "is required: a JSON object")])
    if isinstance(body, bytes):
        # JSON on the wire is UTF-8 (RFC 8259); other encodings are refused, not guessed.
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequestError([FieldError("body", "is not UTF-8 JSON")]) from None
    try:
        document = json.loads(body)
    # ValueError covers malformed JSON and integers past Python's digit limit; RecursionError
    # covers absurdly deep nesting. Neither message is echoed: it may quote the body.
    except (ValueError, RecursionError):
        raise InvalidRequestError([FieldError("body", "is not valid JSON")]) from None
    if not isinstance(document, dict):
        raise InvalidRequestError([FieldError("body", "must be a JSON object")])
    return document


def _text(document: dict[str, Any], name: str, max_length: int, errors: list[FieldError]) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        errors.append(FieldError(name, f"is required: a string of 1 to {max_length} characters"))
        return ""
    # Control characters and lone surrogates cannot be stored or shown; reject them here
    # rather than fail later inside the workflow.
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        errors.append(FieldError(name, "must not contain control characters"))
        return ""
    return value
