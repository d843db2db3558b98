"""POST /purchases under hostile input, checked against the contract and openapi.yaml.

Every request goes through the local HTTP layer (API Gateway's HTTP API events, its 10 MB
limit), the real handler and the real ASL on moto. Three sources of input: hand-written hostile
strategies (malformed JSON, wrong types, unicode, random bytes, header variations), schemathesis
generating from openapi.yaml (valid and invalid by the document), and a fixed corpus of extremes
(1 MB fields, bodies over 10 MB, 1e309, numbers of 5000 digits, deep nesting, other encodings).

Every answer must: not be a 5xx; hold no stack trace; be a JSON object whose `message` is one of
the contract's (or API Gateway's own); have the status the contract gives that message; be the
answer an independent model of the contract expects for the request the function received;
validate against openapi.yaml for its status; and never echo a card number. Nothing stored or
logged may hold a submitted card number.
"""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

import purchase_handler
from card_numbers import find_card_numbers, holds_card_number
from card_validation import luhn_valid
from offline.buyer_tokens import LocalIssuer
from offline.http_api import HttpApi
from tests import reliability
from tests.conftest import PurchaseStack
from tests.unit.test_openapi import (
    DOCUMENT,
    HANDLER_MESSAGES,
    OPENAPI_PATH,
    response_validator,
)

# ------------------------------------------------------------------------------ the contract
INVALID_REQUEST = "Invalid request."
INVALID_CARD = "Invalid credit card."
SOLD_OUT = "Tickets are sold out or purchase already processed."
SHOW_NOT_FOUND = "Show not found."
COMPLETED = "Purchase completed."
# A buyer who already holds the show's cap (10, the stack's) from earlier cases of the run.
LIMIT = "Ticket limit per buyer reached for this show."
# API Gateway's own answers, before the function runs.
GATEWAY_NOT_FOUND = "Not Found"
TOO_LARGE = "Request Entity Too Large"
GATEWAY_UNAUTHORIZED = "Unauthorized"
STATUS_OF = {message: status for status, message in HANDLER_MESSAGES} | {
    GATEWAY_NOT_FOUND: 404,
    TOO_LARGE: 413,
    GATEWAY_UNAUTHORIZED: 401,
}
MAX_BODY_BYTES = 10 * 1024 * 1024
IDEMPOTENCY_KEY_CHARS = frozenset(chr(code) for code in range(0x21, 0x7F))

SHOWS = {"Rock en el Parque": 100_000, "Café del Mar 🎸": 100_000, "Agotado Fest": 0}
# Test numbers of every accepted brand and length, typed as people type them.
VALID_CARDS = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    " 4111  1111--1111 1111 ",
    "5555555555554444",
    "5555 5555 5555 4444",
    "4222222222222",
    "2223000048400011",
    "4111111111111111110",
]
INVALID_CARDS = [
    "4111111111111112",  # Luhn
    "378282246310005",  # American Express
    "6011111111111117",  # Discover
    "411111111111111",  # Visa, 15 digits
    "\uff14\uff11\uff11\uff11" * 4,  # full-width digits
    "\u0664\u0661\u0661\u0661" * 4,  # Arabic-Indic digits
    "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
    "4111.1111.1111.1111",
    "4111111111111111\n",
    "+4111111111111111",
    "0x4111111111111111",
    "",
    " ",
    "----",
    "4" * 2000,
]


def card_is_accepted(raw: str) -> bool:
    """The contract's card rule: spaces and dashes ignored, Visa or Mastercard, Luhn."""
    digits = raw.replace(" ", "").replace("-", "")
    if not digits or any(char not in "0123456789" for char in digits):
        return False
    visa = digits[0] == "4" and len(digits) in (13, 16, 19)
    mastercard = len(digits) == 16 and (
        51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720
    )
    return (visa or mastercard) and luhn_valid(digits)


def _identifier_ok(value: Any, max_length: int) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= max_length
        # Control characters, lone surrogates and format characters (U+202E) are refused, and a
        # card number in an id (docs/design.md, The door).
        and not any(unicodedata.category(char) in ("Cc", "Cs", "Cf") for char in value)
        and not holds_card_number(value)
    )


def expected_answers(body: bytes) -> set[str]:
    """The messages the contract allows for a body the function received."""
    try:
        document = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, RecursionError):
        return {INVALID_REQUEST}
    if not isinstance(document, dict):
        return {INVALID_REQUEST}
    quantity = document.get("quantity", 1)
    if (
        set(document) - {"userId", "showId", "cardNumber", "quantity"}
        or not _identifier_ok(document.get("userId"), 128)
        or not _identifier_ok(document.get("showId"), 256)
        or "#" in document["showId"]
        or not isinstance(document.get("cardNumber"), str)
        or type(quantity) is not int
        or not 1 <= quantity <= 10
    ):
        return {INVALID_REQUEST}
    if not card_is_accepted(document["cardNumber"]):
        return {INVALID_CARD}
    show = unicodedata.normalize("NFC", document["showId"])
    if show not in SHOWS:
        return {SHOW_NOT_FOUND}
    return {COMPLETED, SOLD_OUT, LIMIT} if SHOWS[show] else {SOLD_OUT}


# ------------------------------------------------------------------------------ the system
class PurchaseFunction:
    """The purchase function in this process, as the HTTP layer's route target."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return purchase_handler.lambda_handler(event, self.context)


def _no_local_pages(_: Request) -> Response:
    return Response(json.dumps({"message": GATEWAY_NOT_FOUND}), 404)


@dataclass
class Tally:
    """What the fuzz run tried, for the summary line."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self) -> str:
        server_errors = sum(n for status, n in self.statuses.items() if status >= 500)
        sources = ", ".join(f"{source} {n}" for source, n in sorted(self.cases.items()))
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"fuzz: {sum(self.cases.values())} cases ({sources}), {server_errors} server errors;"
            f" statuses {{{statuses}}}"
        )


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not TALLY.cases:
        return
    reliability.record("fuzz_cases", sum(TALLY.cases.values()))
    reliability.record(
        "fuzz_server_errors", sum(n for status, n in TALLY.statuses.items() if status >= 500)
    )
    # Printed past pytest's capture, so that the figures show in any run's output.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    assert capture is not None and reporter is not None
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(TALLY.summary())


@dataclass
class FuzzedApi:
    """The HTTP API on the purchase stack, checking every answer it gives."""

    stack: PurchaseStack
    function: PurchaseFunction
    app: HttpApi
    client: Client
    source: str = "hostile"
    # Card numbers that reached the function, and digits sent as ids (which may be stored).
    submitted_cards: set[str] = field(default_factory=set)
    submitted_ids: list[str] = field(default_factory=list)
    # Idempotency-Key -> the message of each answer given with it.
    keys: dict[str, list[str]] = field(default_factory=dict)

    def post(
        self, body: bytes, headers: dict[str, str] | None = None, path: str = "/purchases"
    ) -> dict[str, Any]:
        response = self.client.post(path, data=body, headers=headers or {})
        return self.check(response.status_code, response.content_type, response.get_data())

    def check(self, status: int, content_type: str, payload: bytes) -> dict[str, Any]:
        """Check one answer against the contract; return its body."""
        received = self.function.events[-1] if self.function.events else None
        self.function.events.clear()
        TALLY.cases[self.source] += 1
        TALLY.statuses[status] += 1
        body = _body_of(received) if received else None
        key = received["headers"].get("idempotency-key") if received else None
        # Stated in every failure: the request as the function received it.
        request = f"body {body[:200]!r} ({len(body)} bytes)" if body is not None else "no body"
        request += f", Idempotency-Key {key!r}" if key is not None else ""
        assert status < 500, f"{status} {payload[:200]!r} for {request}"
        assert b"Traceback" not in payload and b'File "' not in payload, f"{payload!r} {request}"
        assert content_type.startswith("application/json"), f"{content_type} for {request}"
        answer = json.loads(payload)
        assert isinstance(answer, dict) and isinstance(answer.get("message"), str), answer
        message = answer["message"]
        assert message in STATUS_OF, f"not a contract message: {message!r} for {request}"
        assert STATUS_OF[message] == status, f"{message!r} with status {status} for {request}"
        if body is None:
            assert message in (GATEWAY_NOT_FOUND, TOO_LARGE, GATEWAY_UNAUTHORIZED), (
                f"{message!r} without the function"
            )
        else:
            allowed = self._allowed(body, key, message)
            assert message in allowed, f"{message!r}, not one of {allowed}, for {request}"
            self._remember(body)
        if message != GATEWAY_NOT_FOUND:
            response_validator(DOCUMENT, status).validate(answer)
        echoed = set(find_card_numbers(payload.decode("utf-8")))
        assert not echoed & self.submitted_cards, f"a card number in {payload!r}"
        return answer

    def _allowed(self, body: bytes, key: str | None, message: str) -> set[str]:
        allowed = expected_answers(body)
        if key is None:
            return allowed
        if not key or set(key) - IDEMPOTENCY_KEY_CHARS or len(key) > 128:
            # A malformed key is an invalid request; whether the body or the key is refused
            # first is not the contract's to say, but nothing is ever sold.
            refused_anyway = allowed <= {INVALID_REQUEST, INVALID_CARD}
            return allowed | {INVALID_REQUEST} if refused_anyway else {INVALID_REQUEST}
        earlier = self.keys.setdefault(key, [])
        # A reused key replays an earlier answer (same request) or is refused (another one).
        if earlier:
            allowed |= {INVALID_REQUEST, *earlier}
        earlier.append(message)
        return allowed

    def _remember(self, body: bytes) -> None:
        try:
            document = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            return
        if not isinstance(document, dict):
            return
        card = document.get("cardNumber")
        if isinstance(card, str):
            self.submitted_cards.update(find_card_numbers(card))
        self.submitted_ids += [str(document.get(name)) for name in ("userId", "showId")]

    def assert_no_card_number_kept(self, logs: str) -> None:
        """No submitted card number in any table item, execution, history event or log line."""
        cards = self.submitted_cards - set(find_card_numbers(" ".join(self.submitted_ids)))
        stored = set(find_card_numbers(self.stack.everything_stored()))
        logged = set(find_card_numbers(logs))
        assert not (stored | logged) & cards


def _body_of(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


@pytest.fixture
def api(
    purchase_stack: PurchaseStack, lambda_context: Any, purchase_logs: Any
) -> Iterator[FuzzedApi]:
    for show, tickets in SHOWS.items():
        purchase_stack.add_show(show, tickets)
    function = PurchaseFunction(lambda_context)
    app = HttpApi({("POST", "/purchases"): function}, _no_local_pages)  # type: ignore[dict-item]
    fuzzed = FuzzedApi(purchase_stack, function, app, Client(app))
    yield fuzzed
    fuzzed.assert_no_card_number_kept(purchase_logs.getvalue())


SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

# ------------------------------------------------------------------------------ hostile input
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "\ud83c",
    "🎸",
    "\u202eevil",
    "שלום עולם",
    "\ufeffbom",
    "\u200b",
    "e\u0301",
    "\uffff",
    "\U0010ffff",
    "\x7f",
    "\x85",
    "\t",
    "line\nbreak",
    "null",
    "0",
    "'; DROP TABLE events; --",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "%s%n%x",
    "../../etc/passwd",
    "a" * 128,
    "a" * 129,
    "b" * 256,
    "b" * 257,
    "🎸" * 128,
    "🎸" * 129,
]
texts = st.text(max_size=40) | st.sampled_from(ODD_STRINGS)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | texts,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
shows = st.sampled_from(
    [*SHOWS, unicodedata.normalize("NFD", "Café del Mar 🎸"), "Nonexistent Show"]
)


@st.composite
def purchases(draw: st.DrawFn) -> dict[str, Any]:
    """A purchase the contract accepts, most of the time for a show on sale."""
    document: dict[str, Any] = {
        "userId": draw(st.sampled_from(["ana", "luis", "🎸 fan", "\u202eevil", "a" * 128])),
        "showId": draw(shows),
        "cardNumber": draw(st.sampled_from(VALID_CARDS)),
    }
    if draw(st.booleans()):
        document["quantity"] = draw(st.integers(min_value=1, max_value=10))
    return document


@st.composite
def spoiled_purchases(draw: st.DrawFn) -> dict[str, Any]:
    """A purchase with one thing wrong: a field missing, unknown, mistyped or out of range."""
    document = draw(purchases())
    name = draw(st.sampled_from(["userId", "showId", "cardNumber", "quantity", "quantiy", "x"]))
    how = draw(st.sampled_from(["drop", "value", "odd string", "bad card", "nested"]))
    if how == "drop":
        document.pop(name, None)
    elif how == "value":
        document[name] = draw(json_values)
    elif how == "odd string":
        document[name] = draw(st.sampled_from(ODD_STRINGS))
    elif how == "bad card":
        document["cardNumber"] = draw(st.sampled_from(INVALID_CARDS) | st.text(max_size=25))
    else:
        document[name] = {"$gt": "", "nested": [document.get(name)]}
    return document


def serialised(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """JSON text of a document, escaped or raw; lone surrogates raw make invalid UTF-8."""
    return st.builds(
        lambda document, ascii_only, indent: json.dumps(
            document, ensure_ascii=ascii_only, indent=indent
        ).encode("utf-8", "surrogatepass"),
        documents,
        st.booleans(),
        st.sampled_from([None, 0, 2]),
    )


MALFORMED = [
    b"{",
    b"}",
    b"{'userId': 'ana'}",
    b'{"userId": "ana",}',
    b'{"userId" "ana"}',
    b'{"userId": "ana"}}',
    b'{"quantity": 01}',
    b'{"quantity": 1e309}',
    b'{"quantity": NaN}',
    b'{"quantity": -Infinity}',
    b'{"userId": "\\ud800", "showId": "Rock en el Parque", "cardNumber": "4111111111111111"}',
    b'{"userId": "\\u0000", "showId": "Rock en el Parque", "cardNumber": "4111111111111111"}',
    b'{"userId": "\\x41"}',
    b"\xef\xbb\xbf{}",
    b"\x00\x00\x00",
    b"null",
    b"[]",
    b'"4111111111111111"',
    b"4111111111111111",
    b"userId=ana&showId=Rock&cardNumber=4111111111111111",
    b"[" * 5000,
]


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    whole = json.dumps(draw(purchases())).encode("utf-8")
    return whole[: draw(st.integers(min_value=0, max_value=len(whole) - 1))]


CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "",
    "application/jsonp",
]


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        # Fresh every time: a reused key is another test's subject.
        headers["Idempotency-Key"] = uuid.uuid4().hex
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["Accept", "X-Forwarded-For", "Cookie", "X-Junk"]))] = draw(
            st.sampled_from(["*/*", "' OR 1=1 --", "a=b; c=d", "x" * 4000, "caf\u00e9"])
        )
    return headers


field_names = st.sampled_from(["userId", "showId", "cardNumber", "quantity"]) | st.text(max_size=8)
# One branch in nine is a valid purchase: those run the state machine (about 0.3 s each).
hostile_bodies = st.one_of(
    serialised(purchases()),
    serialised(spoiled_purchases()),
    serialised(spoiled_purchases()),
    serialised(st.dictionaries(field_names, json_values)),
    serialised(json_values.filter(lambda value: not isinstance(value, dict))),
    st.sampled_from(MALFORMED),
    truncated(),
    st.text().map(lambda text: text.encode("utf-8")),
    st.binary(max_size=200),
)


@settings(max_examples=350, deadline=None, suppress_health_check=SUPPRESS)
@given(body=hostile_bodies, headers=header_sets())
def test_fuzz_hostile_requests_get_the_contracts_answer(
    api: FuzzedApi, body: bytes, headers: dict[str, str]
) -> None:
    api.source = "hostile"
    api.post(body, headers)


# ------------------------------------------------------------------------------ schema-driven
SCHEMA = schemathesis.openapi.from_path(OPENAPI_PATH)
ISSUER = LocalIssuer("http://127.0.0.1:3000")
OPERATION = SCHEMA["/purchases"]["POST"]
SCHEMA_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


@settings(max_examples=250, deadline=None, suppress_health_check=SUPPRESS)
@given(
    case=OPERATION.as_strategy(GenerationMode.POSITIVE)
    | OPERATION.as_strategy(GenerationMode.NEGATIVE)
)
def test_fuzz_schemathesis_cases_from_openapi_get_documented_answers(
    api: FuzzedApi, case: Any
) -> None:
    api.source = "schemathesis"
    # The document requires a buyer's token, as the stack deploys by default: a case that sends
    # one sends a valid one (the body is what is fuzzed), a case without one meets the authorizer.
    if "Authorization" in (case.headers or {}):
        case.headers["Authorization"] = f"Bearer {ISSUER.token('ana')}"
    routes = {("POST", "/purchases"): api.function}
    signed_in = HttpApi(routes, _no_local_pages, ISSUER.authorizer())  # type: ignore[dict-item]
    response = case.call(app=signed_in)
    (content_type,) = response.headers.get("content-type", [""])
    api.check(response.status_code, content_type, response.content)
    case.validate_response(response, checks=SCHEMA_CHECKS)


# ------------------------------------------------------------------------------ extremes
def _purchase(*, raw_text: bool = False, **changes: Any) -> bytes:
    """A purchase as JSON: non-ASCII escaped (the default) or raw, lone surrogates included."""
    document = {"userId": "ana", "showId": "Rock en el Parque", "cardNumber": "4111111111111111"}
    text = json.dumps({**document, **changes}, ensure_ascii=not raw_text)
    return text.encode("utf-8", "surrogatepass")


def _with_raw_quantity(literal: str) -> bytes:
    return _purchase(quantity=0).replace(b'"quantity": 0', f'"quantity": {literal}'.encode())


MEGABYTE = 1024 * 1024
# POST /purchases bodies, built only when their case runs.
EXTREME_BODIES: dict[str, Callable[[], bytes]] = {
    "userId-1MB": lambda: _purchase(userId="u" * MEGABYTE),
    "showId-1MB": lambda: _purchase(showId="s" * MEGABYTE),
    "cardNumber-1MB-digits": lambda: _purchase(cardNumber="4" * MEGABYTE),
    "cardNumber-1MB-grouped": lambda: _purchase(cardNumber="4111 " * (MEGABYTE // 5)),
    "unknown-field-1MB": lambda: _purchase(notes="n" * MEGABYTE),
    "body-just-over-10MB": lambda: b" " * MAX_BODY_BYTES + _purchase(),
    "field-over-10MB": lambda: _purchase(userId="u" * (MAX_BODY_BYTES + 1)),
    "quantity-1e309": lambda: _with_raw_quantity("1e309"),
    "quantity--1e309": lambda: _with_raw_quantity("-1e309"),
    "quantity-NaN": lambda: _with_raw_quantity("NaN"),
    "quantity-10**5000": lambda: _with_raw_quantity("1" + "0" * 5000),
    "quantity-5000-nines": lambda: _with_raw_quantity("9" * 5000),
    "quantity-2.0": lambda: _with_raw_quantity("2.0"),
    "quantity-1e0": lambda: _with_raw_quantity("1e0"),
    "quantity-true": lambda: _with_raw_quantity("true"),
    "quantity-string": lambda: _with_raw_quantity('"2"'),
    "quantity-11": lambda: _with_raw_quantity("11"),
    "array-nesting-100k": lambda: b"[" * 100_000 + b"]" * 100_000,
    "object-nesting-100k": lambda: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "nul-bytes": lambda: b"\x00" * 1000,
    "utf-8-bom": lambda: b"\xef\xbb\xbf" + _purchase(),
    "utf-16-body": lambda: _purchase().decode().encode("utf-16"),
    "latin-1-body": lambda: _purchase(raw_text=True, userId="Jos\u00e9").decode().encode("latin-1"),
    "overlong-utf-8": lambda: _purchase().replace(b'"ana"', b'"\xc0\xafana"'),
    "userId-escaped-lone-surrogate": lambda: _purchase(userId="\ud800"),
    "userId-raw-lone-surrogate": lambda: _purchase(raw_text=True, userId="\ud800"),
    "userId-raw-emoji": lambda: _purchase(raw_text=True, userId="🎸"),
    "userId-nul": lambda: _purchase(userId="a\x00"),
    "userId-rtl-override": lambda: _purchase(userId="\u202eana"),
    "showId-nfd-emoji": lambda: _purchase(showId=unicodedata.normalize("NFD", "Café del Mar 🎸")),
    "sold-out-show": lambda: _purchase(showId="Agotado Fest"),
    "unknown-show": lambda: _purchase(showId="No Such Show"),
    "duplicate-keys": lambda: _purchase(quantity=1).replace(b"{", b'{"quantity": 11, ', 1),
    "empty-body": lambda: b"",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Other requests: (method, path, body, headers).
EXTREME_REQUESTS: dict[str, tuple[str, str, bytes, dict[str, str]]] = {
    "form-encoded": ("POST", "/purchases", b"userId=ana&cardNumber=4111111111111111", FORM),
    "query-string-ignored": ("POST", "/purchases?quantity=11&userId=x", _purchase(), {}),
    "GET": ("GET", "/purchases", b"", {}),
    "PUT": ("PUT", "/purchases", _purchase(), {}),
    "DELETE": ("DELETE", "/purchases", b"", {}),
    "trailing-slash": ("POST", "/purchases/", _purchase(), {}),
    "capitalised-path": ("POST", "/Purchases", _purchase(), {}),
    "dot-segments": ("POST", "/purchases/../purchases", _purchase(), {}),
}


def test_fuzz_extreme_requests_get_the_contracts_answer(
    api: FuzzedApi, subtests: pytest.Subtests
) -> None:
    api.source = "extremes"
    # One stack for all: each case is a subtest, reported on its own.
    for name, body in EXTREME_BODIES.items():
        with subtests.test(name):
            api.post(body())
    for name, (method, path, data, headers) in EXTREME_REQUESTS.items():
        with subtests.test(name):
            response = api.client.open(path, method=method, data=data, headers=headers)
            api.check(response.status_code, response.content_type, response.get_data())


def test_fuzz_bodies_over_10_mb_never_reach_the_function(api: FuzzedApi) -> None:
    api.source = "extremes"
    # GIVEN a body one byte over API Gateway's limit
    body = b" " * MAX_BODY_BYTES + b"x"
    # WHEN it is posted
    response = api.client.post("/purchases", data=body)
    # THEN the function never runs (read before `check`, which clears what it received)
    assert api.function.events == []
    # AND API Gateway answers 413
    answer = api.check(response.status_code, response.content_type, response.get_data())
    assert answer == {"message": TOO_LARGE}


INVALID_KEYS = {
    "empty": "",
    "space": " ",
    "inner-space": "has space",
    "tab": "tab\there",
    "latin-1": "caf\u00e9",
    "del": "\x7f",
    "129-chars": "k" * 129,
}


def test_fuzz_idempotency_key_outside_visible_ascii_is_an_invalid_request(
    api: FuzzedApi, subtests: pytest.Subtests
) -> None:
    api.source = "extremes"
    for name, key in INVALID_KEYS.items():
        with subtests.test(name):
            # GIVEN an otherwise valid purchase with a key the contract's pattern refuses
            answer = api.post(_purchase(), {"Idempotency-Key": key})
            # THEN it is refused, and nothing is sold
            assert answer["message"] == INVALID_REQUEST
            assert api.stack.tickets_left("Rock en el Parque") == SHOWS["Rock en el Parque"]
