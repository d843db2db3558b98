"""Parses and validates the POST /purchases body: the only place request errors are decided."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from card_numbers import holds_card_number

MAX_USER_ID_LENGTH = 128
# The catalog's `events.name` column holds 255 characters.
MAX_SHOW_ID_LENGTH = 255
MIN_QUANTITY = 1
MAX_QUANTITY = 10
DEFAULT_QUANTITY = 1
FIELDS = frozenset({"userId", "showId", "cardNumber", "quantity"})
# Unicode categories no id may hold: control, surrogate and format characters.
_NOT_IN_IDS = frozenset({"Cc", "Cs", "Cf"})


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


class UnauthorizedError(Exception):
    """No verified token names the buyer, though the API takes only signed-in buyers."""


class BuyerMismatchError(Exception):
    """The body's userId is not the signed-in buyer: a request acts for its own buyer only."""


class InvalidRequestError(Exception):
    """The body is not a valid purchase request; `errors` says which fields and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def parse_buyer(claims: dict[str, Any] | None) -> str:
    """The signed-in buyer: the subject of the token the API's authorizer verified.

    The issuer assigns it (a Cognito user pool: a UUID), so it is not searched for card numbers,
    which a random id may resemble; it must still be an id the tables can key on.
    """
    subject = (claims or {}).get("sub")
    if not isinstance(subject, str) or not subject:
        raise UnauthorizedError
    if len(subject) > MAX_USER_ID_LENGTH or _unprintable(subject):
        raise InvalidRequestError(
            [FieldError("token", f"subject must be 1 to {MAX_USER_ID_LENGTH} printable characters")]
        )
    return subject


def parse_purchase(body: bytes | str | None, buyer: str | None) -> PurchaseRequest:
    """Return the purchase a body asks for, or raise InvalidRequestError listing every problem.

    `buyer` is the signed-in buyer (the token's subject), None when the API takes anonymous
    buyers: then the body's `userId` names the buyer; otherwise it is optional and, if present,
    must be `buyer` (BuyerMismatchError).
    """
    document = _load_json_object(body)
    errors = [
        FieldError(name, "is not a known field (expected userId, showId, cardNumber, quantity)")
        for name in sorted(set(document) - FIELDS)
    ]
    if buyer is None:
        user_id = _id_text(document, "userId", MAX_USER_ID_LENGTH, errors)
    else:
        user_id = buyer
        if "userId" in document and document["userId"] != buyer:
            # Checked before the other fields: nothing of another buyer's request is judged.
            raise BuyerMismatchError
    # Show names are stored NFC-normalised (flyer file names are too): "Café" typed either way
    # is the same show.
    show_id = unicodedata.normalize("NFC", _id_text(document, "showId", MAX_SHOW_ID_LENGTH, errors))
    if "#" in show_id:
        # `#` joins a show's name to its bucket and sale-shard keys: no show's name holds it.
        errors.append(FieldError("showId", "must not contain '#'"))
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


def _id_text(document: dict[str, Any], name: str, max_length: int, errors: list[FieldError]) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        errors.append(FieldError(name, f"is required: a string of 1 to {max_length} characters"))
        return ""
    problem = id_problem(value)
    if problem is not None:
        errors.append(FieldError(name, problem))
        return ""
    return value


def id_problem(value: str) -> str | None:
    """Why `value` cannot be an id (a buyer, a show, an Idempotency-Key), None if it can.

    Control characters and lone surrogates cannot be stored or shown; format characters (U+200B
    zero width space, U+202E right-to-left override) make two different ids look the same; a
    card number would be stored wherever the id is. The message never quotes the value.
    """
    if _unprintable(value):
        return "must not contain control or format characters"
    if holds_card_number(value):
        return "must not contain a card number"
    return None


def _unprintable(value: str) -> bool:
    return any(unicodedata.category(char) in _NOT_IN_IDS for char in value)
