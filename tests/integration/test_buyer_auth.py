"""Buyer identity at the door of the local stack: a purchase without a valid token is refused
as API Gateway's JWT authorizer refuses it, and leaves no sale and no write in any table."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from offline.buyer_tokens import LocalIssuer
from offline.token import fetch_token
from tests import reliability
from tests.local_stack_process import ROOT, RunningStack, ports, post_json

SHOW = "Rock en el Parque"
VISA = "4111 1111 1111 1111"
BUYER = "ana"


@dataclass
class Stack:
    process: RunningStack
    api_port: str
    aws: str

    def post(self, authorization: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {"Authorization": authorization} if authorization is not None else {}
        # userId equal to the token's subject: valid with and without a token.
        body = {"userId": BUYER, "showId": SHOW, "cardNumber": VISA}
        return post_json(f"http://127.0.0.1:{self.api_port}/purchases", body, headers)

    def items(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of every table: what a refused request must leave as it was."""
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        return {
            table: [
                item
                for page in dynamodb.get_paginator("scan").paginate(TableName=table)
                for item in page["Items"]
            ]
            for table in dynamodb.list_tables()["TableNames"]
        }


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """`make local` with its default buyer identity: tokens of its own issuer."""
    env = ports()
    process = RunningStack(env)
    process.wait_ready()
    try:
        yield Stack(process, env["LOCAL_API_PORT"], f"http://127.0.0.1:{env['LOCAL_AWS_PORT']}")
    finally:
        process.stop()
    assert process.processes_left() == []


def refused_authorizations(stack: Stack) -> dict[str, str | None]:
    """Authorization headers a caller could send, each wrong in one way only."""
    genuine = fetch_token(BUYER, stack.api_port)
    header, payload, signature = genuine.split(".")
    tampered = signature[:-6] + ("AAAAAA" if not signature.endswith("AAAAAA") else "BBBBBB")
    # The stack's own issuer URL and audience, signed by a key that is not the stack's.
    impostor = LocalIssuer(f"http://127.0.0.1:{stack.api_port}")
    return {
        "no token": None,
        "empty header": "",
        "not a token": "Bearer not-a-token",
        "expired": "Bearer " + fetch_token(BUYER, stack.api_port, expires_in="-1"),
        "not yet valid": "Bearer " + fetch_token(BUYER, stack.api_port, nbf_in="600"),
        "wrong audience": "Bearer " + fetch_token(BUYER, stack.api_port, aud="another-app"),
        "forged signature": f"Bearer {header}.{payload}.{tampered}",
        "another issuer's key": "Bearer " + impostor.token(BUYER),
    }


def test_buyer_auth_refused_tokens_sell_nothing_and_write_nothing(stack: Stack) -> None:
    # GIVEN the tables as they are before any purchase
    before = stack.items()
    # WHEN purchases arrive with no token or a bad one
    refusals = refused_authorizations(stack)
    answers = {name: stack.post(authorization) for name, authorization in refusals.items()}
    # THEN each is API Gateway's 401, and a bad token hears why in www-authenticate
    for name, (status, headers, body) in answers.items():
        assert (status, body) == (401, {"message": "Unauthorized"}), name
        challenge = {k.lower(): v for k, v in headers.items()}.get("www-authenticate")
        if refusals[name]:
            assert challenge and challenge.startswith('Bearer scope="" error="invalid_token"')
    audience = {k.lower(): v for k, v in answers["wrong audience"][1].items()}
    assert "the token does not have a valid audience" in audience["www-authenticate"]
    # AND no table changed: no claim, no sale, no idempotency record, the stock untouched
    after = stack.items()
    assert after == before
    sales = len(after["TicketSales"]) - len(before["TicketSales"])
    writes = sum(
        len([item for item in after[table] if item not in before[table]]) for table in after
    )
    reliability.record("refused_token_requests", len(answers))
    reliability.record("refused_token_sales", sales)
    reliability.record("refused_token_writes", writes)


def test_buyer_auth_valid_token_buys_as_its_subject(stack: Stack) -> None:
    # GIVEN a token from `make token`'s endpoint
    token = fetch_token(BUYER, stack.api_port)
    # WHEN the buyer purchases with it
    status, _, answer = stack.post(f"Bearer {token}")
    # THEN it sells, to the token's subject
    assert (status, answer["message"]) == (200, "Purchase completed.")
    assert answer["executionId"] == f"{BUYER}-{SHOW}"
    (sale,) = [s for s in stack.items()["TicketSales"] if s.get("userId", {}).get("S") == BUYER]
    assert sale["showId"]["S"].startswith(SHOW)


def test_buyer_auth_make_token_prints_a_token_the_stack_accepts(stack: Stack) -> None:
    # GIVEN the token `make token` prints for the stack on this port
    printed = subprocess.run(
        ["make", "--no-print-directory", "-s", "token", f"USER={BUYER}"],
        cwd=ROOT,
        env={**os.environ, "LOCAL_API_PORT": stack.api_port},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # WHEN the buyer purchases with it, THEN it sells
    status, _, answer = stack.post(f"Bearer {printed}")
    assert (status, answer["message"]) == (200, "Purchase completed.")
