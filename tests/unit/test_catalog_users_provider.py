"""The CatalogUsers custom resource: CloudFormation always hears back, never the password."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import catalog_users_handler
import catalog_users_provider
from tests.events import FakeLambdaContext, load_event

PASSWORD = "Master-Password-42"  # the sample event's


class ResponseCatcher(http.server.BaseHTTPRequestHandler):
    """CloudFormation's presigned response URL, on loopback: keeps every PUT body."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[str]:
    ResponseCatcher.bodies = []
    server = http.server.HTTPServer(("127.0.0.1", 0), ResponseCatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response?X-Amz-Signature=abc"
    server.shutdown()
    server.server_close()


class FakeLambda:
    """The Lambda client, answering each invoke as the in-VPC function would."""

    def __init__(self, answer: dict[str, Any], error: bool = False) -> None:
        self.answer, self.error = answer, error
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.payloads.append({"function": FunctionName, **json.loads(Payload)})
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.error:
            response["FunctionError"] = "Unhandled"
        return response


@pytest.fixture
def provider_logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(catalog_users_provider.logger.registered_handler, "stream", buffer)
    return buffer


def run(
    monkeypatch: pytest.MonkeyPatch, url: str, client: FakeLambda, request_type: str = "Create"
) -> dict[str, Any]:
    monkeypatch.setenv("CATALOG_USERS_FUNCTION", "CatalogUsersFunction")
    monkeypatch.setattr(catalog_users_provider, "_lambda_client", lambda: client)
    event = load_event("cfn_catalog_users_create") | {"ResponseURL": url}
    event["RequestType"] = request_type
    catalog_users_provider.lambda_handler(event, FakeLambdaContext())
    (body,) = ResponseCatcher.bodies
    return body


def test_provider_create_runs_the_setup_in_the_vpc_and_reports_success(
    monkeypatch: pytest.MonkeyPatch, response_url: str, provider_logs: io.StringIO
) -> None:
    client = FakeLambda({"migrationsApplied": ["001_events"]})

    body = run(monkeypatch, response_url, client)

    assert client.payloads == [
        {"function": "CatalogUsersFunction", "masterUser": "ticketera", "masterPassword": PASSWORD}
    ]
    assert body["Status"] == "SUCCESS"
    assert body["Data"] == {"MigrationsApplied": "001_events"}
    assert body["LogicalResourceId"] == "CatalogUsers"
    assert body["PhysicalResourceId"].endswith("/ticketera")
    assert PASSWORD not in json.dumps(body) + provider_logs.getvalue()


def test_provider_failed_setup_reports_failed_with_its_error_not_the_password(
    monkeypatch: pytest.MonkeyPatch, response_url: str, provider_logs: io.StringIO
) -> None:
    client = FakeLambda({"errorMessage": "(1045, \"Access denied for user 'ticketera'\")"}, True)

    body = run(monkeypatch, response_url, client, "Update")

    assert body["Status"] == "FAILED"
    assert "Access denied" in body["Reason"]
    assert PASSWORD not in json.dumps(body) + provider_logs.getvalue()


def test_provider_delete_touches_nothing_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, response_url: str
) -> None:
    client = FakeLambda({"migrationsApplied": []})

    body = run(monkeypatch, response_url, client, "Delete")

    assert client.payloads == []
    assert body["Status"] == "SUCCESS"


def test_catalog_users_handler_master_creates_users_and_migrator_migrates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the in-VPC function's environment as the template sets it
    ca = catalog_users_handler.__file__  # any existing file stands in for the bundle
    environ = {
        "DB_HOST": "catalog.example.internal",
        "DB_PORT": "3306",
        "DB_NAME": "ticketera",
        "DB_USER": "schema_migrator",
        "DB_AUTH": "iam",
        "DB_SSL_CA": ca,
        "AWS_REGION": "us-east-1",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    seen: list[Any] = []
    monkeypatch.setattr(
        catalog_users_handler,
        "set_up_catalog",
        lambda master, migrator: seen.append((master, migrator)) or ["001_events"],
    )

    # WHEN CloudFormation's request reaches it
    answer = catalog_users_handler.lambda_handler(
        {"masterUser": "ticketera", "masterPassword": PASSWORD}, FakeLambdaContext()
    )

    # THEN the master logs in with the password; the migrations user with its IAM token
    ((master, migrator),) = seen
    assert (master.user, master.password) == ("ticketera", PASSWORD)
    assert (migrator.user, migrator.password) == ("schema_migrator", None)
    assert master.ssl_ca == migrator.ssl_ca is not None
    assert answer == {"migrationsApplied": ["001_events"]}
