"""openapi.yaml: valid OpenAPI 3.1 that says exactly what the handler, the parser and README say."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import purchase_handler
import purchase_request
import purchase_workflow
from card_validation import check_card
from purchase_outcomes import OUTCOMES, UNAUTHORIZED
from tests.events import load_event

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = ROOT / "openapi.yaml"
OPERATION_POINTER = "/paths/~1purchases/post"
# Answered by API Gateway before the function runs: not the handler's to produce.
GATEWAY_STATUSES = {
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.TOO_MANY_REQUESTS,
}
# The base of every JSON pointer into the document, for $ref resolution.
DOCUMENT_URI = "urn:ticketera:openapi"


def load_openapi() -> dict[str, Any]:
    """The OpenAPI document as plain data."""
    document: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


def schema_validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A JSON Schema validator for the schema at `pointer`, its $refs resolved in `document`."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=registry)


def request_validator(document: dict[str, Any]) -> Draft202012Validator:
    """Validates a POST /purchases body (parsed JSON) against the document."""
    return schema_validator(
        document, f"{OPERATION_POINTER}/requestBody/content/application~1json/schema"
    )


def response_validator(document: dict[str, Any], status: int) -> Draft202012Validator:
    """Validates a POST /purchases answer body; KeyError for a status the document lacks."""
    responses = document["paths"]["/purchases"]["post"]["responses"]
    if str(status) not in responses:
        raise KeyError(f"status {status} is not documented")
    return schema_validator(
        document, f"{OPERATION_POINTER}/responses/{status}/content/application~1json/schema"
    )


def documented_messages(document: dict[str, Any]) -> set[tuple[int, str]]:
    """Every (status, message) the document allows, read from the message enums."""
    found: set[tuple[int, str]] = set()
    schemas = document["components"]["schemas"]

    def messages_of(schema: dict[str, Any]) -> list[str]:
        if "$ref" in schema:
            return messages_of(schemas[schema["$ref"].rsplit("/", 1)[-1]])
        if "oneOf" in schema:
            return [message for option in schema["oneOf"] for message in messages_of(option)]
        enum: list[str] = schema["properties"]["message"]["enum"]
        return enum

    for status, response in document["paths"]["/purchases"]["post"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        found.update((int(status), message) for message in messages_of(schema))
    return found


def readme_api_table() -> set[tuple[int, str]]:
    """(status, message) rows of the table in README.md's API section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d{3}) \| `([^`]+)` \|", section, flags=re.MULTILINE)
    return {(int(status), message) for status, message in rows}


DOCUMENT = load_openapi()
# The handler's answers: the table of outcomes.
# The handler's own 401 repeats API Gateway's text (a request that reached it without the
# authorizer's claims): documented once, as the gateway's.
HANDLER_MESSAGES = {
    (outcome.status.value, outcome.message)
    for outcome in OUTCOMES
    if outcome.status not in GATEWAY_STATUSES
}


def test_openapi_document_is_valid_openapi_3_1() -> None:
    validate_openapi(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1.")


def test_openapi_messages_are_exactly_the_handlers() -> None:
    from_handler = documented_messages(DOCUMENT) - {
        (status, message)
        for status, message in documented_messages(DOCUMENT)
        if status in GATEWAY_STATUSES
    }
    assert from_handler == HANDLER_MESSAGES


def test_openapi_gateway_answers_are_api_gateways_own_texts() -> None:
    gateway = {pair for pair in documented_messages(DOCUMENT) if pair[0] in GATEWAY_STATUSES}
    assert gateway == {
        (401, "Unauthorized"),
        (413, "Request Entity Too Large"),
        (429, "Too Many Requests"),
    }


def test_openapi_messages_match_the_readme_api_table() -> None:
    assert readme_api_table() == HANDLER_MESSAGES


def test_openapi_request_schema_has_the_parsers_fields_and_bounds() -> None:
    schema = DOCUMENT["components"]["schemas"]["PurchaseRequest"]
    fields = schema["properties"]
    assert set(fields) == purchase_request.FIELDS
    assert set(schema["required"]) == purchase_request.FIELDS - {"quantity"}
    assert schema["additionalProperties"] is False
    assert (fields["userId"]["minLength"], fields["userId"]["maxLength"]) == (
        1,
        purchase_request.MAX_USER_ID_LENGTH,
    )
    assert (fields["showId"]["minLength"], fields["showId"]["maxLength"]) == (
        1,
        purchase_request.MAX_SHOW_ID_LENGTH,
    )
    assert fields["cardNumber"]["type"] == "string"
    quantity = fields["quantity"]
    assert (quantity["type"], quantity["minimum"], quantity["maximum"], quantity["default"]) == (
        "integer",
        purchase_request.MIN_QUANTITY,
        purchase_request.MAX_QUANTITY,
        purchase_request.DEFAULT_QUANTITY,
    )


def test_openapi_idempotency_key_is_an_optional_header_of_visible_ascii() -> None:
    parameter = DOCUMENT["components"]["parameters"]["IdempotencyKey"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "Idempotency-Key",
        "header",
        False,
    )
    pattern = re.compile(parameter["schema"]["pattern"])
    assert pattern.fullmatch("5b7e9a3c-0000-4000-8000-000000000001")
    assert pattern.fullmatch("!" * 128) and pattern.fullmatch("~")
    for refused in ["", "a" * 129, "has space", "tab\t", "caf\u00e9", "\x7f"]:
        assert not pattern.fullmatch(refused), refused


@pytest.mark.parametrize("name", ["visa", "mastercard"])
def test_openapi_request_examples_are_valid_sales_for_the_parser_and_the_layer(name: str) -> None:
    operation = DOCUMENT["paths"]["/purchases"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["examples"][name]["value"]
    request_validator(DOCUMENT).validate(example)
    request = purchase_request.parse_purchase(json.dumps(example), None)
    check_card(request.card_number)


def test_openapi_response_examples_validate_against_their_schemas() -> None:
    checked = 0
    for status, response in DOCUMENT["paths"]["/purchases"]["post"]["responses"].items():
        content = response["content"]["application/json"]
        examples = [content["example"]] if "example" in content else []
        examples += [example["value"] for example in content.get("examples", {}).values()]
        for example in examples:
            response_validator(DOCUMENT, int(status)).validate(example)
            checked += 1
    assert checked >= 5


class FakeStepFunctions:
    def __init__(self, result: dict[str, Any] | Exception) -> None:
        self.result = result

    def start_sync_execution(self, **_: Any) -> dict[str, Any]:
        if isinstance(self.result, Exception):
            raise self.result
        return {"executionArn": "arn:aws:states:us-east-1:123456789012:express:sm:x", **self.result}


SOLD = {
    "executionId": "ana-Rock en el Parque",
    "showId": "Rock en el Parque",
    "quantity": 2,
    "card": {"brand": "visa", "last4": "1111"},
}
SUCCEEDED = {"status": "SUCCEEDED", "output": json.dumps({**SOLD, "ticketsAvailable": 8})}
# The stock read after the sale failed: the sale stands, the count is unknown.
SUCCEEDED_NO_COUNT = {
    "status": "SUCCEEDED",
    "output": json.dumps({**SOLD, "ticketsAvailable": None}),
}


@pytest.mark.parametrize(
    ("event", "result", "status"),
    [
        ("purchase_visa", SUCCEEDED, 200),
        ("purchase_visa", SUCCEEDED_NO_COUNT, 200),
        ("purchase_visa", {"status": "FAILED", "error": "PurchaseInProgress"}, 400),
        ("purchase_visa", {"status": "FAILED", "error": "SoldOut"}, 400),
        ("purchase_visa", {"status": "FAILED", "error": "ShowNotFound"}, 404),
        ("purchase_visa", {"status": "TIMED_OUT"}, 500),
        ("purchase_visa", RuntimeError("boom"), 500),
        ("purchase_invalid_card", SUCCEEDED, 400),
        ("purchase_amex_card", SUCCEEDED, 400),
        ("purchase_malformed_json", SUCCEEDED, 400),
        ("purchase_missing_fields", SUCCEEDED, 400),
        ("purchase_quantity_out_of_range", SUCCEEDED, 400),
    ],
)
def test_openapi_every_handler_answer_validates_against_the_document(
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    event: str,
    result: dict[str, Any] | Exception,
    status: int,
) -> None:
    # GIVEN the workflow's outcome replaced by a canned one
    fake = FakeStepFunctions(result)
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:sm")
    purchase_workflow.settings.cache_clear()
    monkeypatch.setattr(purchase_workflow, "sfn_client", lambda: fake)
    # WHEN the handler answers a sample event
    response = purchase_handler.lambda_handler(load_event(event), lambda_context)
    # THEN the answer is one the document describes, for that status
    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/json"
    response_validator(DOCUMENT, status).validate(json.loads(response["body"]))


# JSON values that put each field's every kind of wrong in reach: wrong types, bounds, controls.
_ANY_TEXT = st.text(max_size=300) | st.sampled_from(["", "a" * 128, "a" * 129, "b" * 257, "\x00"])
_FIELD_VALUES = (
    _ANY_TEXT
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.integers(min_value=-2, max_value=12)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
_BODIES = st.dictionaries(
    st.sampled_from(["userId", "showId", "cardNumber", "quantity", "quantiy", "extra"]),
    _FIELD_VALUES,
)


@settings(max_examples=300, deadline=None)
@given(body=_BODIES)
def test_openapi_request_schema_accepts_exactly_what_the_parser_accepts(
    body: dict[str, Any],
) -> None:
    # A float with no fraction (2.0) is an integer to JSON Schema but not to the parser, which
    # wants a JSON integer literal; the document cannot tell the two apart.
    quantity = body.get("quantity")
    if isinstance(quantity, float) and quantity.is_integer():
        body["quantity"] = int(quantity) if abs(quantity) < 1e6 else "not a number"
    try:
        purchase_request.parse_purchase(json.dumps(body), None)
        accepted = True
    except purchase_request.InvalidRequestError:
        accepted = False
    assert request_validator(DOCUMENT).is_valid(body) is accepted


def test_openapi_handlers_own_401_is_api_gateways_answer() -> None:
    # A request that reaches the function without the authorizer's claims hears what API
    # Gateway would have answered.
    assert (UNAUTHORIZED.status.value, UNAUTHORIZED.message) in documented_messages(DOCUMENT)
    assert UNAUTHORIZED.status in GATEWAY_STATUSES
