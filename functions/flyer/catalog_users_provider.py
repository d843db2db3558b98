"""CloudFormation custom resource CatalogUsers: runs the catalog's setup in the VPC, answers.

Outside the VPC on purpose: CloudFormation hears the outcome through a presigned S3 URL, which a
function in the VPC could only reach through a NAT gateway or an endpoint. This one invokes the
in-VPC step (catalog_users_handler) and relays its outcome. A Delete does nothing: the database
and its users go with the catalog (whose snapshot keeps them).
"""

from __future__ import annotations

import functools
import json
import os
import urllib.request
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

logger = Logger(service="catalog-users")

# The in-VPC function's name; its timeout bounds how long a setup can take.
CATALOG_USERS_FUNCTION = "CATALOG_USERS_FUNCTION"
# Above the in-VPC function's timeout (template.yaml), and one attempt only: a read timeout
# retried by botocore would run the setup twice at once.
INVOKE_READ_TIMEOUT_SECONDS = 130
RESPONSE_TIMEOUT_SECONDS = 30
REASON_MAX_CHARACTERS = 1000


class SetupFailedError(Exception):
    """The in-VPC step failed; the message is its error, which CloudFormation shows."""


@functools.cache
def _lambda_client() -> Any:
    config = Config(read_timeout=INVOKE_READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1})
    return boto3.client("lambda", config=config)


# Never log the event: its ResourceProperties hold the master password.
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Create/Update: set up the catalog's users and schema; Delete: nothing. Always answers
    CloudFormation, which would otherwise wait an hour for a failure."""
    properties = event["ResourceProperties"]
    physical_id = event.get("PhysicalResourceId") or (
        f"{properties['DatabaseHost']}/{properties['DatabaseName']}"
    )
    status, reason, data = "SUCCESS", "", {}
    if event["RequestType"] in ("Create", "Update"):
        # Whatever fails must reach CloudFormation as FAILED (and roll the stack back) rather
        # than leave it waiting: every error becomes the answer's reason, and is logged.
        try:
            data = {"MigrationsApplied": ",".join(run_setup(properties))}
        except Exception as error:
            logger.exception("Catalog setup failed")
            status, reason = "FAILED", str(error)[:REASON_MAX_CHARACTERS]
    respond(event, status, physical_id, reason, data)


def run_setup(properties: dict[str, Any]) -> list[str]:
    """Invoke the in-VPC step with the master credentials; the migrations it applied."""
    payload = {
        "masterUser": properties["MasterUser"],
        "masterPassword": properties["MasterPassword"],
    }
    response = _lambda_client().invoke(
        FunctionName=os.environ[CATALOG_USERS_FUNCTION], Payload=json.dumps(payload).encode()
    )
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else answer
        raise SetupFailedError(f"catalog setup failed: {message}")
    return [str(version) for version in answer["migrationsApplied"]]


def respond(
    event: dict[str, Any], status: str, physical_id: str, reason: str, data: dict[str, str]
) -> None:
    """PUT the outcome to the presigned URL CloudFormation gave (cfn-response's format)."""
    body = {
        "Status": status,
        "Reason": reason or "See the function's log group",
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's https URL
        event["ResponseURL"],
        data=json.dumps(body).encode(),
        method="PUT",
        # The URL is signed for an empty content type.
        headers={"Content-Type": ""},
    )
    with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS):  # noqa: S310
        pass
