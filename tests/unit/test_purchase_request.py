"""The request parser: every field rule of the API contract."""

from __future__ import annotations

import json
import unicodedata

import pytest

from purchase_request import (
    BuyerMismatchError,
    InvalidRequestError,
    PurchaseRequest,
    UnauthorizedError,
    parse_buyer,
    parse_purchase,
)

VALID = {"userId": "ana", "showId": "Rock", "cardNumber": "4111111111111111", "quantity": 3}


def fields_in_error(body: bytes | str | None) -> list[str]:
    with pytest.raises(InvalidRequestError) as raised:
        parse_purchase(body, None)
    return [error.field for error in raised.value.errors]


def test_parse_purchase_valid_body_returns_request() -> None:
    assert parse_purchase(json.dumps(VALID), None) == PurchaseRequest(
        "ana", "Rock", "4111111111111111", 3
    )


def test_parse_purchase_without_quantity_defaults_to_one() -> None:
    body = {key: value for key, value in VALID.items() if key != "quantity"}
    assert parse_purchase(json.dumps(body), None).quantity == 1


def test_parse_purchase_decomposed_show_name_is_normalised_to_nfc() -> None:
    # GIVEN "Café" typed with a combining accent (NFD)
    body = {**VALID, "showId": unicodedata.normalize("NFD", "Café")}
    # THEN it names the same show as the precomposed spelling
    assert parse_purchase(json.dumps(body), None).show_id == "Café"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (None, ["body"]),
        ("", ["body"]),
        ('{"userId": ', ["body"]),
        ("[1, 2]", ["body"]),
        ('"just a string"', ["body"]),
        ("[" * 100_000, ["body"]),
        ('{"quantity": ' + "9" * 5000 + "}", ["body"]),
        ("{}", ["userId", "showId", "cardNumber"]),
    ],
    ids=["none", "empty", "malformed", "array", "string", "deep", "huge-int", "empty-object"],
)
def test_parse_purchase_unusable_body_names_the_fields(body: str | None, fields: list[str]) -> None:
    assert fields_in_error(body) == fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("userId", ""),
        ("userId", "u" * 129),
        ("userId", 42),
        ("userId", None),
        ("userId", "ana\n"),
        ("userId", "\ud800"),
        ("showId", ""),
        ("showId", "s" * 257),
        ("showId", ["Rock"]),
        ("cardNumber", 4111111111111111),
        ("cardNumber", None),
        ("quantity", 0),
        ("quantity", 11),
        ("quantity", -1),
        ("quantity", 2.0),
        ("quantity", "2"),
        ("quantity", True),
        ("quantity", None),
        ("quantity", 10**30),
    ],
)
def test_parse_purchase_bad_field_is_reported(field: str, value: object) -> None:
    assert fields_in_error(json.dumps({**VALID, field: value})) == [field]


def test_parse_purchase_limits_are_inclusive() -> None:
    body = {**VALID, "userId": "u" * 128, "showId": "s" * 255, "quantity": 10}
    request = parse_purchase(json.dumps(body), None)
    assert (len(request.user_id), len(request.show_id), request.quantity) == (128, 255, 10)


def test_parse_purchase_unknown_field_is_rejected() -> None:
    # A typo such as "quantiy" must not silently buy the default single ticket.
    assert fields_in_error(json.dumps({**VALID, "quantiy": 4})) == ["quantiy"]


def test_parse_purchase_every_problem_is_listed_at_once() -> None:
    assert fields_in_error(json.dumps({"quantity": 0})) == [
        "userId",
        "showId",
        "cardNumber",
        "quantity",
    ]


def test_parse_purchase_error_never_echoes_the_body() -> None:
    body = '{"cardNumber": "4111111111111111", "userId": '
    with pytest.raises(InvalidRequestError) as raised:
        parse_purchase(body, None)
    assert "4111" not in str(raised.value)
    assert "4111" not in " ".join(e.message for e in raised.value.errors)


@pytest.mark.parametrize(
    "body",
    [b"\x80", '{"userId": "José"}'.encode("latin-1"), '{"a": 1}'.encode("utf-16")],
    ids=["stray-byte", "latin-1", "utf-16"],
)
def test_parse_purchase_body_not_utf8_is_an_invalid_request(body: bytes) -> None:
    assert fields_in_error(body) == ["body"]


def test_parse_purchase_utf8_bytes_are_read_like_text() -> None:
    body = json.dumps({**VALID, "userId": "José"}).encode()
    assert parse_purchase(body, None).user_id == "José"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("userId", "4111 1111 1111 1111"),
        ("userId", "fan 5555-5555-5555-4444"),
        ("showId", "Rock 4111111111111111"),
        ("userId", "ana\u202e"),  # right-to-left override
        ("showId", "Rock\u200b"),  # zero width space
        ("showId", "Big#3"),  # a bucket's key
        ("showId", "s" * 256),  # past the catalog's 255 characters
    ],
)
def test_parse_purchase_id_that_could_alias_or_leak_is_refused_without_echo(
    field: str, value: str
) -> None:
    # GIVEN an id holding a card number, a format character, `#` or too many characters
    body = json.dumps({**VALID, field: value})
    # WHEN parsed THEN that field is refused, and no message quotes the value
    with pytest.raises(InvalidRequestError) as raised:
        parse_purchase(body, None)
    assert [error.field for error in raised.value.errors] == [field]
    assert value not in str([error.message for error in raised.value.errors])


def test_parse_purchase_signed_in_buyer_needs_no_user_id() -> None:
    body = {key: value for key, value in VALID.items() if key != "userId"}
    assert parse_purchase(json.dumps(body), "sub-123").user_id == "sub-123"


def test_parse_purchase_signed_in_buyer_may_repeat_their_own_user_id() -> None:
    assert parse_purchase(json.dumps({**VALID, "userId": "sub-123"}), "sub-123").user_id == (
        "sub-123"
    )


@pytest.mark.parametrize("user_id", ["mallory", "", 42, None])
def test_parse_purchase_user_id_of_another_buyer_is_refused(user_id: object) -> None:
    with pytest.raises(BuyerMismatchError):
        parse_purchase(json.dumps({**VALID, "userId": user_id}), "sub-123")


def test_parse_buyer_is_the_tokens_subject() -> None:
    assert parse_buyer({"sub": "7d3f-uuid", "client_id": "app"}) == "7d3f-uuid"


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"sub": 7}, {"client_id": "app"}])
def test_parse_buyer_without_a_subject_is_unauthorized(claims: dict[str, object] | None) -> None:
    with pytest.raises(UnauthorizedError):
        parse_buyer(claims)


@pytest.mark.parametrize("subject", ["s" * 129, "ana\u200b", "ana\n"])
def test_parse_buyer_subject_no_table_can_key_on_is_an_invalid_request(subject: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_buyer({"sub": subject})
