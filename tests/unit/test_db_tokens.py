"""RDS IAM authentication tokens: signed locally, for the right host, port, user and region."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import events_db
from events_db import iam_auth_token
from flyer_config import DbSettings

HOST = "catalog.cluster-abc123.eu-west-1.rds.amazonaws.com"


@pytest.fixture
def lambda_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A Lambda function's credentials: temporary, with a session token."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEFUNCTION")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "function-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "function-session-token")
    events_db._rds_client.cache_clear()
    yield
    events_db._rds_client.cache_clear()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("signing a token must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def settings(tmp_path: Path) -> DbSettings:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    return DbSettings(HOST, 3306, "ticketera", "flyer_function", None, ca, "eu-west-1")


def test_iam_auth_token_is_a_presigned_connect_for_host_port_user_and_region(
    tmp_path: Path, lambda_credentials: None, no_network: None
) -> None:
    token = iam_auth_token(settings(tmp_path))

    # host:port/?query, without a scheme (RDS wants none)
    assert token.startswith(f"{HOST}:3306/?")
    query = {name: values[0] for name, values in parse_qs(urlsplit(f"//{token}").query).items()}
    assert query["Action"] == "connect"
    assert query["DBUser"] == "flyer_function"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert re.fullmatch(
        r"ASIAEXAMPLEFUNCTION/\d{8}/eu-west-1/rds-db/aws4_request", query["X-Amz-Credential"]
    )
    assert query["X-Amz-Expires"] == "900"
    assert query["X-Amz-Security-Token"] == "function-session-token"
    assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"])


def test_iam_auth_token_differs_per_user(tmp_path: Path, lambda_credentials: None) -> None:
    flyer = settings(tmp_path)
    other = DbSettings(HOST, 3306, "ticketera", "show_writer", None, flyer.ssl_ca, "eu-west-1")

    assert "DBUser=show_writer" in iam_auth_token(other)
    assert iam_auth_token(flyer) != iam_auth_token(other)


def test_open_connection_without_password_sends_the_signed_token(
    tmp_path: Path, lambda_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN PyMySQL replaced by a recorder of what it is asked to do
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(events_db.pymysql, "connect", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(events_db, "iam_auth_token", lambda s: f"token-for-{s.user}")

    # WHEN the function opens a connection with IAM settings
    events_db.open_connection(settings(tmp_path))

    # THEN the token is the password, and TLS is required and verified, host name included
    (arguments,) = calls
    assert arguments["password"] == "token-for-flyer_function"
    assert arguments["ssl_ca"] == str(tmp_path / "ca.pem")
    assert arguments["ssl_verify_cert"] is True
    assert arguments["ssl_verify_identity"] is True
