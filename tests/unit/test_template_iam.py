"""Every grant of the stack as `sam deploy` creates it (the SAM template transformed offline by
aws-sam-translator), pinned: who may do what, on which resource, under which condition."""

from __future__ import annotations

import copy
import re
from typing import Any

import boto3
import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

import catalog_users
import catalog_users_provider
from events_schema import load_migrations
from offline import cfn_template
from purchase_outcomes import INTERNAL_ERROR

ROOT = cfn_template.ROOT
SAM_TEMPLATE = cfn_template.load_template()


def transform(template: dict[str, Any]) -> dict[str, Any]:
    """The template as CloudFormation receives it from `sam deploy`; package paths stand in as
    S3 URIs, as `sam package` would upload them."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://offline-packages/{properties[key]}"
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name="us-east-1"),
    )
    transformed: dict[str, Any] = translator.translate(sam_template=template, parameter_values={})
    return transformed


DEPLOYED = transform(SAM_TEMPLATE)
RESOURCES = DEPLOYED["Resources"]


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(policy_documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) pairs the documents allow, resources written as compact text."""
    pairs = set()
    for document in policy_documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    pairs.add((action, describe(resource)))
    return pairs


def describe(resource: Any) -> str:
    """A resource reference as short text: `*`, `Ref:X`, `X.Arn`, or `rds-db:<user>`."""
    if resource == "*":
        return "*"
    if "Ref" in resource:
        return f"Ref:{resource['Ref']}"
    if "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    if "Fn::If" in resource:
        _condition, aurora, rds = resource["Fn::If"]
        users = {re.search(r"dbuser:.+/(\w+)$", branch["Fn::Sub"])[1] for branch in (aurora, rds)}
        assert "AuroraCatalog.DBClusterResourceId" in aurora["Fn::Sub"]
        assert "Database.DbiResourceId" in rds["Fn::Sub"]
        (user,) = users
        return f"rds-db:{user}"
    raise AssertionError(f"unexpected resource {resource!r}")


def role_grants(role_id: str) -> set[tuple[str, str]]:
    policies = RESOURCES[role_id]["Properties"]["Policies"]
    return grants([policy["PolicyDocument"] for policy in policies])


def function_role(function_id: str) -> str:
    role = RESOURCES[function_id]["Properties"]["Role"]
    assert role == {"Fn::GetAtt": [role["Fn::GetAtt"][0], "Arn"]}
    return str(role["Fn::GetAtt"][0])


XRAY = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
VPC = {
    (f"ec2:{action}", "*")
    for action in (
        "CreateNetworkInterface",
        "DescribeNetworkInterfaces",
        "DescribeSubnets",
        "DeleteNetworkInterface",
        "AssignPrivateIpAddresses",
        "UnassignPrivateIpAddresses",
    )
}


def own_logs(log_group: str) -> set[tuple[str, str]]:
    return {("logs:CreateLogStream", f"{log_group}.Arn"), ("logs:PutLogEvents", f"{log_group}.Arn")}


EXPECTED_FUNCTION_GRANTS = {
    "PurchaseFunction": {
        ("states:StartSyncExecution", "Ref:PurchaseStateMachine"),
        *{(f"dynamodb:{a}", "IdempotencyRecords.Arn") for a in ("GetItem", "PutItem")},
        *{(f"dynamodb:{a}", "IdempotencyRecords.Arn") for a in ("UpdateItem", "DeleteItem")},
        *XRAY,
    },
    "FlyerFunction": {
        ("rds-db:connect", f"rds-db:{catalog_users.FLYER_USER}"),
        ("sqs:SendMessage", "FlyerDeadLetterQueue.Arn"),
        *XRAY,
        *VPC,
    },
    # No database permission: it logs in with the token its caller signs.
    "ShowCatalogFunction": {*XRAY, *VPC},
    "CatalogUsersFunction": {
        ("rds-db:connect", f"rds-db:{catalog_users.MIGRATIONS_USER}"),
        *XRAY,
        *VPC,
    },
    "CatalogUsersProvider": {("lambda:InvokeFunction", "CatalogUsersFunction.Arn"), *XRAY},
}


def test_deployed_every_function_is_one_the_grants_below_pin() -> None:
    assert set(of_type("AWS::Lambda::Function")) == set(EXPECTED_FUNCTION_GRANTS)


@pytest.mark.parametrize("function_id", sorted(EXPECTED_FUNCTION_GRANTS))
def test_deployed_function_role_grants_exactly_its_needs_and_logs_only_to_its_group(
    function_id: str,
) -> None:
    log_group = SAM_TEMPLATE["Resources"][function_id]["Properties"]["LoggingConfig"]["LogGroup"]
    role = function_role(function_id)

    assert role_grants(role) == EXPECTED_FUNCTION_GRANTS[function_id] | own_logs(log_group["Ref"])


def test_deployed_no_role_has_an_aws_managed_policy_or_a_permissive_trust() -> None:
    # SAM's generated roles attach AWSLambdaBasicExecutionRole: logs in any group.
    for role_id, role in of_type("AWS::IAM::Role").items():
        properties = role["Properties"]
        assert "ManagedPolicyArns" not in properties, role_id
        (statement,) = properties["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Principal"] in (
            {"Service": "lambda.amazonaws.com"},
            {"Service": "states.amazonaws.com"},
        )


def test_deployed_state_machine_role_trusts_step_functions_of_this_account_only() -> None:
    machine = RESOURCES["PurchaseStateMachine"]["Properties"]
    role = RESOURCES[machine["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source_arn == (
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*"
    )


def test_deployed_state_machine_role_grants_only_logs_delivery_traces_and_the_sale() -> None:
    role = RESOURCES["PurchaseStateMachine"]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    wildcard = {action for action, resource in role_grants(role) if resource == "*"}

    assert all(a.startswith(("logs:", "xray:")) and "*" not in a for a in wildcard)
    assert {(a, r) for a, r in role_grants(role) if r != "*"} == {
        ("dynamodb:UpdateItem", "LambdaExecutionLog.Arn"),
        ("dynamodb:UpdateItem", "ShowTickets.Arn"),
        ("dynamodb:GetItem", "ShowTickets.Arn"),
        ("dynamodb:PutItem", "TicketSales.Arn"),
        ("dynamodb:GetItem", "TicketSales.Arn"),
    }


def test_deployed_s3_may_invoke_the_flyer_function_for_the_flyers_bucket_only() -> None:
    permissions = of_type("AWS::Lambda::Permission")
    bucket = RESOURCES["FlyersBucket"]

    (s3,) = (
        p["Properties"]
        for p in permissions.values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    )
    assert s3["FunctionName"] == {"Ref": "FlyerFunction"}
    assert s3["SourceAccount"] == {"Ref": "AWS::AccountId"}
    # The ARN names the bucket the template names: the same expression of the stack's id.
    name_template, name_values = bucket["Properties"]["BucketName"]["Fn::Sub"]
    arn_template, arn_values = s3["SourceArn"]["Fn::Sub"]
    assert arn_template == "arn:${AWS::Partition}:s3:::" + name_template
    assert arn_values == name_values
    assert "FlyerFunctionS3Permission" in as_list(bucket["DependsOn"])
    targets = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert {str(t["Function"]) for t in targets} == {"{'Fn::GetAtt': ['FlyerFunction', 'Arn']}"}


def test_deployed_only_api_gateway_and_s3_may_invoke_functions_by_resource_policy() -> None:
    # The catalog function and the deployment's functions are invoked on identity permissions
    # alone: the organiser's policy, the provider's role.
    principals = {
        (p["Properties"]["FunctionName"]["Ref"], p["Properties"]["Principal"])
        for p in of_type("AWS::Lambda::Permission").values()
    }
    assert principals == {
        ("PurchaseFunction", "apigateway.amazonaws.com"),
        ("FlyerFunction", "s3.amazonaws.com"),
    }


def test_deployed_organiser_policy_grants_make_show_and_show_availability_only() -> None:
    (document,) = (
        p["Properties"]["PolicyDocument"] for p in of_type("AWS::IAM::ManagedPolicy").values()
    )

    assert grants([document]) == {
        ("cloudformation:DescribeStacks", "Ref:AWS::StackId"),
        ("dynamodb:GetItem", "ShowTickets.Arn"),
        ("dynamodb:PutItem", "ShowTickets.Arn"),
        ("dynamodb:Query", "TicketSales.Arn"),
        ("lambda:InvokeFunction", "ShowCatalogFunction.Arn"),
        ("rds-db:connect", f"rds-db:{catalog_users.SHOWS_USER}"),
    }


def test_deployed_only_the_organiser_policy_may_invoke_or_sign_for_the_catalog_function() -> None:
    holders = set()
    documents = {
        **{
            rid: [p["PolicyDocument"] for p in r["Properties"]["Policies"]]
            for rid, r in of_type("AWS::IAM::Role").items()
        },
        **{
            pid: [p["Properties"]["PolicyDocument"]]
            for pid, p in of_type("AWS::IAM::ManagedPolicy").items()
        },
    }
    for holder, docs in documents.items():
        pairs = grants(docs)
        if pairs & {
            ("lambda:InvokeFunction", "ShowCatalogFunction.Arn"),
            ("rds-db:connect", f"rds-db:{catalog_users.SHOWS_USER}"),
        }:
            holders.add(holder)
    assert holders == {"OrganiserPolicy"}


# ------------------------------------------------------------------ the catalog's logins

CATALOG_FUNCTIONS = {
    "FlyerFunction": catalog_users.FLYER_USER,
    "ShowCatalogFunction": catalog_users.SHOWS_USER,
    "CatalogUsersFunction": catalog_users.MIGRATIONS_USER,
}


@pytest.mark.parametrize(("function_id", "user"), sorted(CATALOG_FUNCTIONS.items()))
def test_deployed_catalog_function_logs_in_as_its_user_with_a_token_over_verified_tls(
    function_id: str, user: str
) -> None:
    variables = RESOURCES[function_id]["Properties"]["Environment"]["Variables"]

    assert variables["DB_USER"] == user
    assert variables["DB_AUTH"] == "iam"
    assert "DB_PASSWORD" not in variables
    # The bundle the build fetches into the function's package.
    makefile = (ROOT / "functions/flyer/Makefile").read_text(encoding="utf-8")
    assert f"RDS_CA_BUNDLE := {variables['DB_SSL_CA']}" in makefile


def test_deployed_master_password_reaches_the_databases_and_the_setup_step_only() -> None:
    def uses_password(node: Any) -> bool:
        if isinstance(node, dict):
            return node == {"Ref": "DatabasePassword"} or any(map(uses_password, node.values()))
        return isinstance(node, list) and any(map(uses_password, node))

    users = {rid for rid, resource in RESOURCES.items() if uses_password(resource)}
    assert users == {"AuroraCatalog", "Database", "CatalogUsers"}
    assert RESOURCES["CatalogUsers"]["Properties"]["MasterPassword"] == {"Ref": "DatabasePassword"}


def test_deployed_both_catalogs_accept_iam_database_authentication() -> None:
    for catalog in ("AuroraCatalog", "Database"):
        assert RESOURCES[catalog]["Properties"]["EnableIAMDatabaseAuthentication"] is True


def test_deployed_catalog_setup_runs_again_when_grants_or_migrations_change() -> None:
    properties = RESOURCES["CatalogUsers"]["Properties"]
    written = " ".join(properties["Grants"].split())
    expected = "; ".join(
        f"{user.name}: "
        + ", ".join(f"{privileges} ON {table}" for privileges, table in user.grants)
        for user in catalog_users.USERS
    )

    assert written == expected
    assert properties["Migrations"] == ",".join(m.version for m in load_migrations())
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["CatalogUsersProvider", "Arn"]}


def test_deployed_catalog_setup_answers_cloudformation_within_its_timeouts() -> None:
    provider = RESOURCES["CatalogUsersProvider"]["Properties"]
    setup = RESOURCES["CatalogUsersFunction"]["Properties"]

    # The provider outwaits the setup, and still has time to answer CloudFormation.
    assert setup["Timeout"] < catalog_users_provider.INVOKE_READ_TIMEOUT_SECONDS
    assert provider["Timeout"] >= (
        catalog_users_provider.INVOKE_READ_TIMEOUT_SECONDS
        + catalog_users_provider.RESPONSE_TIMEOUT_SECONDS
    )
    assert "VpcConfig" not in provider and "VpcConfig" in setup
    assert RESOURCES["CatalogUsers"]["Properties"]["ServiceTimeout"] > provider["Timeout"]


def test_build_every_function_of_the_catalog_package_has_its_makefile_target() -> None:
    makefile = (ROOT / "functions/flyer/Makefile").read_text(encoding="utf-8")
    for function_id, resource in SAM_TEMPLATE["Resources"].items():
        if (
            resource["Type"] == "AWS::Serverless::Function"
            and resource["Properties"]["CodeUri"] == "functions/flyer/"
        ):
            assert resource["Metadata"]["BuildMethod"] == "makefile"
            assert re.search(rf"(^|\s)build-{function_id}[\s:]", makefile, re.MULTILINE)


# ------------------------------------------------------------------------------ watched


def alarm(alarm_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[alarm_id]["Properties"]
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["TreatMissingData"] == "notBreaching"
    return properties


def test_deployed_every_alarm_notifies_the_topic_whose_email_is_a_parameter() -> None:
    assert set(of_type("AWS::CloudWatch::Alarm")) == {
        "FlyerDeadLetterAlarm",
        "FailedPurchasesAlarm",
        "RequestRateAlarm",
    }
    for alarm_id in of_type("AWS::CloudWatch::Alarm"):
        alarm(alarm_id)
    (subscription,) = RESOURCES["AlarmTopic"]["Properties"]["Subscription"]
    assert subscription == {"Protocol": "email", "Endpoint": {"Ref": "AlertEmail"}}


def test_deployed_dead_letter_alarm_fires_on_one_waiting_flyer() -> None:
    properties = alarm("FlyerDeadLetterAlarm")

    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FlyerDeadLetterQueue", "QueueName"]}}
    ]
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        0,
        "GreaterThanThreshold",
    )


def test_deployed_failed_purchases_alarm_counts_purchase_errors_and_function_errors() -> None:
    properties = alarm("FailedPurchasesAlarm")
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m}
    purchase_env = SAM_TEMPLATE["Resources"]["PurchaseFunction"]["Properties"]["Environment"]

    # Powertools Metrics: the namespace of the Globals and the service as a dimension.
    globals_env = SAM_TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert stats["answered500"] == {
        "Namespace": globals_env["POWERTOOLS_METRICS_NAMESPACE"],
        "MetricName": INTERNAL_ERROR.metric,
        "Dimensions": [
            {"Name": "service", "Value": purchase_env["Variables"]["POWERTOOLS_SERVICE_NAME"]}
        ],
    }
    assert stats["crashed"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "PurchaseFunction"}}
    ]
    (expression,) = (m["Expression"] for m in properties["Metrics"] if m.get("ReturnData"))
    assert expression == "FILL(answered500, 0) + FILL(crashed, 0)"
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )


def test_deployed_request_rate_alarm_needs_15_sustained_minutes_above_the_parameter() -> None:
    properties = alarm("RequestRateAlarm")
    (requests,) = (m for m in properties["Metrics"] if "MetricStat" in m)

    assert requests["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "ApiId", "Value": {"Ref": "PurchaseApi"}}
    ]
    period = requests["MetricStat"]["Period"]
    assert period * properties["EvaluationPeriods"] == 900
    assert properties["DatapointsToAlarm"] == properties["EvaluationPeriods"]
    assert properties["Threshold"] == {"Ref": "RequestRateAlarmPerSecond"}


def test_deployed_monthly_budget_emails_the_alert_address() -> None:
    (budget,) = of_type("AWS::Budgets::Budget").values()
    properties = budget["Properties"]

    assert properties["Budget"]["TimeUnit"] == "MONTHLY"
    assert properties["Budget"]["BudgetLimit"]["Amount"] == {"Ref": "MonthlyBudgetUsd"}
    for notification in properties["NotificationsWithSubscribers"]:
        assert notification["Subscribers"] == [
            {"SubscriptionType": "EMAIL", "Address": {"Ref": "AlertEmail"}}
        ]


def test_template_no_function_or_state_machine_has_policies_sam_would_ignore() -> None:
    # With a Role of its own, SAM silently drops a resource's Policies: a grant added there
    # would never reach AWS. Grants go in the resource's <Name>Role.
    for logical_id, resource in SAM_TEMPLATE["Resources"].items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            properties = resource["Properties"]
            assert "Role" in properties, logical_id
            assert "Policies" not in properties, logical_id
