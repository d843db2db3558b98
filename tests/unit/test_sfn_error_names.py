"""Step Functions names DynamoDB errors as AWS does, not as moto does: the ASL's Retry and Catch
lists match on these names, so a wrong spelling is a retry that never happens on AWS."""

from __future__ import annotations

import pytest

from offline.moto_sfn import optimised_dynamodb_error_name


@pytest.mark.parametrize(
    ("code", "name"),
    [
        # Recorded on AWS: LocalStack's parity snapshot test_task_service_dynamodb.snapshot.json.
        ("ValidationException", "DynamoDB.AmazonDynamoDBException"),
        ("ConditionalCheckFailedException", "DynamoDB.ConditionalCheckFailedException"),
        # The AWS Java SDK v1 exception classes, by the same rule.
        ("InternalServerError", "DynamoDB.InternalServerErrorException"),
        ("RequestLimitExceeded", "DynamoDB.RequestLimitExceededException"),
        ("TransactionConflictException", "DynamoDB.TransactionConflictException"),
        (
            "ProvisionedThroughputExceededException",
            "DynamoDB.ProvisionedThroughputExceededException",
        ),
        # No class of its own in the Java SDK v1: its base class.
        ("ThrottlingException", "DynamoDB.AmazonDynamoDBException"),
    ],
)
def test_optimised_dynamodb_error_name_is_awss(code: str, name: str) -> None:
    assert optimised_dynamodb_error_name(code) == name
