"""The local HTTP API's stage throttle: a token bucket with the template's limits, and HTTP API's
429 for a request beyond them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from offline import cfn_template
from offline.http_api import HttpApi
from offline.throttle import ThrottleLimits, ThrottleSettingError, TokenBucket, stage_limits

BODY = json.dumps({"userId": "ana", "showId": "Rock", "cardNumber": "4111 1111 1111 1111"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingFunction:
    """Stands in for the purchase function's pool: counts the invocations that reached it."""

    def __init__(self) -> None:
        self.invocations = 0

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        return {"statusCode": 200, "body": json.dumps({"message": "Purchase completed."})}


def no_local_pages(request: Request) -> Response:
    return Response(status=404)


def test_stage_limits_default_to_the_templates_parameters() -> None:
    template = cfn_template.load_template()
    parameters = template["Parameters"]
    limits = stage_limits(template, {})
    assert limits == ThrottleLimits(
        float(parameters["ApiRateLimit"]["Default"]), int(parameters["ApiBurstLimit"]["Default"])
    )


def test_stage_limits_taken_from_the_environment_when_set() -> None:
    template = cfn_template.load_template()
    limits = stage_limits(template, {"API_RATE_LIMIT": "2.5", "API_BURST_LIMIT": "7"})
    assert limits == ThrottleLimits(2.5, 7)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_RATE_LIMIT", "0"),
        ("API_RATE_LIMIT", "-1"),
        ("API_RATE_LIMIT", "fast"),
        ("API_RATE_LIMIT", "inf"),
        ("API_RATE_LIMIT", "nan"),
        ("API_BURST_LIMIT", "2.5"),
        ("API_BURST_LIMIT", "0"),
    ],
)
def test_stage_limits_not_positive_are_refused_with_their_name(name: str, value: str) -> None:
    with pytest.raises(ThrottleSettingError, match=name):
        stage_limits(cfn_template.load_template(), {name: value})


def test_token_bucket_full_at_start_empties_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(ThrottleLimits(rate_per_second=2, burst=5), clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]


def test_token_bucket_refills_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(ThrottleLimits(rate_per_second=2, burst=5), clock)
    for _ in range(5):
        bucket.take()
    clock.now += 0.49  # 0.98 of a token: still none
    assert not bucket.take()
    clock.now += 0.01
    assert bucket.take()
    assert not bucket.take()
    clock.now += 3600  # an hour idle refills the burst, not 7,200 tokens
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]


def test_http_api_beyond_the_stage_limits_answers_429_without_invoking_the_function() -> None:
    # GIVEN the HTTP API with a stage throttle of 1 a second, burst 3
    clock = FakeClock()
    function = CountingFunction()
    throttle = TokenBucket(ThrottleLimits(rate_per_second=1, burst=3), clock)
    routes = {("POST", "/purchases"): function}
    client = Client(HttpApi(routes, no_local_pages, None, throttle))  # type: ignore[arg-type]
    # WHEN 5 requests arrive at once
    answers = [client.post("/purchases", data=BODY) for _ in range(5)]
    # THEN the burst reaches the function and the rest hear HTTP API's 429
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].get_json() == {"message": "Too Many Requests"}
    assert function.invocations == 3
    # AND a second later the bucket holds a token again
    clock.now += 1
    assert client.post("/purchases", data=BODY).status_code == 200
    assert function.invocations == 4


def test_http_api_throttle_spares_unknown_routes_and_local_pages() -> None:
    clock = FakeClock()
    throttle = TokenBucket(ThrottleLimits(rate_per_second=1, burst=1), clock)
    routes = {("POST", "/purchases"): CountingFunction()}
    client = Client(HttpApi(routes, no_local_pages, None, throttle))  # type: ignore[arg-type]
    assert client.post("/purchases", data=BODY).status_code == 200
    assert client.get("/_local/traces").status_code == 404  # the local page, not a 429
    assert client.post("/elsewhere", data=BODY).status_code == 404
