"""The local HTTP API's JWT authorizer, as HTTP API's: which tokens reach the function, with
which claims in the event, and what everyone else hears."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from offline.buyer_tokens import LOCAL_AUDIENCE, LocalIssuer
from offline.http_api import HttpApi

BASE_URL = "http://127.0.0.1:3000"
BODY = json.dumps({"userId": "ana", "showId": "Rock", "cardNumber": "4111 1111 1111 1111"})


class RecordingFunction:
    """Stands in for the purchase function's pool: keeps each event it is invoked with."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": json.dumps({"message": "Purchase completed."})}


def no_local_pages(request: Request) -> Response:
    return Response(status=404)


@pytest.fixture
def issuer() -> LocalIssuer:
    return LocalIssuer(BASE_URL)


@pytest.fixture
def function() -> RecordingFunction:
    return RecordingFunction()


@pytest.fixture
def client(issuer: LocalIssuer, function: RecordingFunction) -> Client:
    routes = {("POST", "/purchases"): function}
    return Client(HttpApi(routes, no_local_pages, issuer.authorizer()))  # type: ignore[arg-type]


def post(client: Client, authorization: str | None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.post("/purchases", data=BODY, headers=headers)


def assert_refused(answer: Any, description: str | None, function: RecordingFunction) -> None:
    assert answer.status_code == 401
    assert answer.get_json() == {"message": "Unauthorized"}
    challenge = answer.headers.get("www-authenticate")
    if description is None:
        assert challenge is None
    else:
        expected = f'Bearer scope="" error="invalid_token" error_description="{description}"'
        assert challenge == expected
    assert function.events == []


def test_authorizer_no_token_is_refused_before_the_function(
    client: Client, function: RecordingFunction
) -> None:
    assert_refused(post(client, None), None, function)
    assert_refused(post(client, ""), None, function)


@pytest.mark.parametrize(
    "authorization", ["Bearer", "Bearer not-a-token", "Basic YW5hOnB3", "Bearer a.b.c"]
)
def test_authorizer_malformed_header_is_refused(
    client: Client, function: RecordingFunction, authorization: str
) -> None:
    assert_refused(post(client, authorization), "the token is malformed", function)


def test_authorizer_expired_token_is_refused(
    client: Client, issuer: LocalIssuer, function: RecordingFunction
) -> None:
    # GIVEN a token whose hour ended a second ago
    token = issuer.token("ana", now=time.time() - 3601)
    assert_refused(post(client, f"Bearer {token}"), "the token has expired", function)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_authorizer_token_not_yet_valid_is_refused(
    client: Client, issuer: LocalIssuer, function: RecordingFunction, claim: str
) -> None:
    token = issuer.token("ana", extra_claims={claim: int(time.time()) + 60})
    assert_refused(post(client, f"Bearer {token}"), "the token is not valid yet", function)


def test_authorizer_forged_signature_is_refused(
    client: Client, issuer: LocalIssuer, function: RecordingFunction
) -> None:
    # GIVEN a genuine token whose claims were changed to another buyer's after signing
    header, _, signature = issuer.token("ana").split(".")
    forged_claims = issuer.token("bob").split(".")[1]
    forged = f"{header}.{forged_claims}.{signature}"
    assert_refused(post(client, f"Bearer {forged}"), "the token signature is invalid", function)


def test_authorizer_token_of_another_key_is_refused(
    client: Client, function: RecordingFunction
) -> None:
    # GIVEN a token with the right issuer and audience, signed by a key that is not the issuer's
    impostor = LocalIssuer(BASE_URL)
    description = "the token is not signed by a key of the issuer"
    assert_refused(post(client, f"Bearer {impostor.token('ana')}"), description, function)


def test_authorizer_symmetric_or_keyless_signature_is_refused(
    client: Client, issuer: LocalIssuer, function: RecordingFunction
) -> None:
    # HTTP API verifies RSA signatures only, by the JWKS key the token's kid names.
    claims = {"sub": "ana", "iss": issuer.url, "client_id": LOCAL_AUDIENCE}
    claims["exp"] = int(time.time()) + 60  # type: ignore[assignment]
    kid = issuer.jwks()["keys"][0]["kid"]
    hmac = jwt.encode({"alg": "HS256", "kid": kid}, claims, OctKey.generate_key(256))
    description = "the token signing algorithm is not supported"
    assert_refused(post(client, f"Bearer {hmac}"), description, function)
    keyless = issuer.token("ana").split(".")
    no_kid = jwt.encode({"alg": "RS256"}, claims, issuer._key).split(".")[0]
    description = "the token does not name its signing key (kid)"
    assert_refused(
        post(client, f"Bearer {no_kid}.{keyless[1]}.{keyless[2]}"), description, function
    )


def test_authorizer_wrong_issuer_is_refused(
    client: Client, issuer: LocalIssuer, function: RecordingFunction
) -> None:
    token = issuer.token("ana", extra_claims={"iss": "https://issuer.example"})
    description = "the token does not have a valid issuer"
    assert_refused(post(client, f"Bearer {token}"), description, function)


@pytest.mark.parametrize(
    "claims",
    [
        {"client_id": "another-app"},
        # aud, when present, is what counts: a right client_id does not save a wrong aud.
        {"aud": "another-app"},
        {"aud": ["another-app", "a-third-app"]},
    ],
    ids=["client_id", "aud", "aud-list"],
)
def test_authorizer_wrong_audience_is_refused(
    client: Client, issuer: LocalIssuer, function: RecordingFunction, claims: dict[str, Any]
) -> None:
    token = issuer.token("ana", extra_claims=claims)
    description = "the token does not have a valid audience"
    assert_refused(post(client, f"Bearer {token}"), description, function)


@pytest.mark.parametrize("prefix", ["Bearer ", ""])
def test_authorizer_valid_token_reaches_the_function_with_its_claims(
    client: Client, issuer: LocalIssuer, function: RecordingFunction, prefix: str
) -> None:
    # GIVEN a valid token, with an ID token's aud and a list claim beside the usual ones
    token = issuer.token(
        "ana", extra_claims={"aud": LOCAL_AUDIENCE, "cognito:groups": ["buyers", "vip"]}
    )
    # WHEN it is sent alone or after "Bearer "
    answer = post(client, prefix + token)
    # THEN the function answers, and its event carries the claims as payload 2.0 does: strings
    assert answer.status_code == 200
    (event,) = function.events
    jwt_context = event["requestContext"]["authorizer"]["jwt"]
    claims = jwt_context["claims"]
    assert claims["sub"] == "ana"
    assert claims["iss"] == issuer.url
    assert claims["aud"] == LOCAL_AUDIENCE
    assert claims["cognito:groups"] == "[buyers vip]"
    assert all(isinstance(value, str) for value in claims.values())
    assert int(claims["exp"]) > time.time()
    assert jwt_context["scopes"] is None


def test_authorizer_off_passes_anonymous_requests_without_claims(
    function: RecordingFunction,
) -> None:
    # GIVEN the HTTP API as BUYER_AUTH=none serves it
    client = Client(HttpApi({("POST", "/purchases"): function}, no_local_pages))  # type: ignore[dict-item]
    # WHEN a request comes without a token, THEN it reaches the function, with no authorizer
    assert post(client, None).status_code == 200
    (event,) = function.events
    assert "authorizer" not in event["requestContext"]


def test_local_issuer_publishes_discovery_and_a_public_jwks(issuer: LocalIssuer) -> None:
    discovery = issuer.discovery_document()
    assert discovery["issuer"] == f"{BASE_URL}/_local/issuer"
    assert discovery["jwks_uri"] == f"{BASE_URL}/_local/issuer/.well-known/jwks.json"
    (key,) = issuer.jwks()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256"
    assert "d" not in key  # no private part
