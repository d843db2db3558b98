"""template.yaml and the ASL agree: timeouts, substitutions, least-privilege IAM, the layer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonata
import pytest

from offline import cfn_template

ROOT = cfn_template.ROOT
TEMPLATE = cfn_template.load_template()
RESOURCES = TEMPLATE["Resources"]
STATE_MACHINE = RESOURCES["PurchaseStateMachine"]["Properties"]
ASL_TEXT = (ROOT / STATE_MACHINE["DefinitionUri"]).read_text(encoding="utf-8")
ASL = json.loads(ASL_TEXT)
# The DynamoDB actions each ASL task needs, by API name.
TASK_ACTIONS = {"putItem": "PutItem", "updateItem": "UpdateItem", "getItem": "GetItem"}
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


def table_of(table_name: str) -> str:
    """The logical id of the table an ASL TableName placeholder stands for."""
    placeholder = re.fullmatch(r"\$\{(\w+)\}", table_name)
    assert placeholder, f"table names reach the ASL through DefinitionSubstitutions: {table_name}"
    return str(STATE_MACHINE["DefinitionSubstitutions"][placeholder.group(1)]["Ref"])


def actions_the_asl_uses() -> set[tuple[str, str]]:
    used = set()
    for state in ASL["States"].values():
        resource = state.get("Resource", "")
        api = resource.rsplit(":", 1)[-1]
        if resource.startswith("arn:aws:states:::dynamodb:"):
            used.add((table_of(state["Arguments"]["TableName"]), TASK_ACTIONS[api]))
        elif resource == "arn:aws:states:::aws-sdk:dynamodb:transactWriteItems":
            for item in state["Arguments"]["TransactItems"]:
                ((kind, operation),) = item.items()
                used.add((table_of(operation["TableName"]), TRANSACT_ACTIONS[kind]))
        else:
            assert not resource, f"unexpected integration {resource}: direct DynamoDB only"
    return used


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of the role the resource runs with (its own AWS::IAM::Role)."""
    role = RESOURCES[resource["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_template_state_machine_grants_exactly_the_dynamodb_actions_the_asl_uses() -> None:
    granted = set()
    for statement in statements(RESOURCES["PurchaseStateMachine"]):
        for action in as_list(statement["Action"]):
            if action.startswith("dynamodb:"):
                (table,) = (r["Fn::GetAtt"][0] for r in as_list(statement["Resource"]))
                granted.add((table, action.removeprefix("dynamodb:")))
    assert granted == actions_the_asl_uses()


def test_template_wildcard_resources_are_only_log_delivery_and_trace_actions() -> None:
    for logical_id in ("PurchaseStateMachine", "PurchaseFunction"):
        for statement in statements(RESOURCES[logical_id]):
            assert all("*" not in action for action in as_list(statement["Action"]))
            if statement["Resource"] == "*":
                assert all(a.startswith(("logs:", "xray:")) for a in as_list(statement["Action"]))


def test_template_purchase_function_may_only_run_the_workflow_and_keep_idempotency() -> None:
    by_sid = {s["Sid"]: s for s in statements(RESOURCES["PurchaseFunction"])}
    workflow, idempotency = by_sid["RunThePurchaseWorkflow"], by_sid["RememberIdempotencyKeys"]
    # The rest: its own log group and X-Ray (tests/unit/test_template_iam.py pins every grant).
    assert set(by_sid) == {
        "RunThePurchaseWorkflow",
        "RememberIdempotencyKeys",
        "WriteItsOwnLogs",
        "SendTraces",
    }
    assert workflow["Action"] == "states:StartSyncExecution"
    assert workflow["Resource"] == {"Ref": "PurchaseStateMachine"}
    # What Powertools' DynamoDB persistence layer calls, on its own table only.
    assert set(idempotency["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert idempotency["Resource"] == {"Fn::GetAtt": ["IdempotencyRecords", "Arn"]}


def test_template_every_substitution_is_used_and_every_placeholder_defined() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_TEXT))
    assert placeholders == set(STATE_MACHINE["DefinitionSubstitutions"])


def test_template_asl_is_express_jsonata_with_a_timeout_in_at_most_20_states() -> None:
    assert STATE_MACHINE["Type"] == "EXPRESS"
    assert ASL["QueryLanguage"] == "JSONata"
    assert ASL["TimeoutSeconds"] > 0
    # A workflow a newcomer reads at once: every state is a step of the sale or a decision.
    assert len(ASL["States"]) <= 20


def jsonata_expressions(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from re.findall(r"^\{%(.*)%\}$", value, flags=re.DOTALL)
    elif isinstance(value, dict):
        for item in value.values():
            yield from jsonata_expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from jsonata_expressions(item)


def test_template_every_jsonata_expression_of_the_asl_parses() -> None:
    # statelint does not parse the expressions: a typo would only fail when its state runs.
    expressions = list(jsonata_expressions(ASL))
    assert len(expressions) > 50
    for expression in expressions:
        jsonata.Jsonata(expression)


def test_template_lease_outlives_the_state_machine_and_lambda_outwaits_it() -> None:
    # A live execution must never lose its claim; the function must see the execution end.
    lease = TEMPLATE["Parameters"]["LeaseSeconds"]
    assert lease["MinValue"] >= ASL["TimeoutSeconds"]
    assert lease["Default"] >= ASL["TimeoutSeconds"]
    assert RESOURCES["PurchaseFunction"]["Properties"]["Timeout"] > ASL["TimeoutSeconds"]


@pytest.mark.parametrize("name", [n for n, s in ASL["States"].items() if s["Type"] == "Task"])
def test_template_every_task_retries_throttling_with_jitter(name: str) -> None:
    retriers = ASL["States"][name]["Retry"]
    assert retriers and all(r["JitterStrategy"] == "FULL" for r in retriers)


def test_template_state_machine_logs_every_execution_without_its_data_and_traces() -> None:
    level = STATE_MACHINE["Logging"]["Level"]
    assert TEMPLATE["Parameters"][level["Ref"]]["Default"] == "ALL"
    assert STATE_MACHINE["Logging"]["IncludeExecutionData"] is False
    assert STATE_MACHINE["Tracing"]["Enabled"] is True
    log_group = STATE_MACHINE["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]
    group = RESOURCES[log_group["LogGroupArn"]["Fn::GetAtt"][0]]["Properties"]
    assert "RetentionInDays" in group
    # Half the ingestion price by default; STANDARD for a stack whose group already exists.
    log_class = TEMPLATE["Parameters"][group["LogGroupClass"]["Ref"]]
    assert log_class["Default"] == "INFREQUENT_ACCESS"
    assert set(log_class["AllowedValues"]) == {"INFREQUENT_ACCESS", "STANDARD"}


def test_template_card_check_ships_as_a_layer_not_a_copy() -> None:
    function = RESOURCES["PurchaseFunction"]["Properties"]
    layer = RESOURCES["CardValidationLayer"]
    assert function["Layers"] == [{"Ref": "CardValidationLayer"}]
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    layer_dir = ROOT / layer["Properties"]["ContentUri"]
    assert (layer_dir / "card_validation.py").is_file()
    # BuildMethod puts the modules under python/ itself; a python/ folder here would nest it.
    assert not (layer_dir / "python").exists()
    assert not list((ROOT / function["CodeUri"]).rglob("card_validation*.py"))


def test_template_every_function_handler_exists() -> None:
    for resource in cfn_template.resources_of_type(TEMPLATE, "AWS::Serverless::Function").values():
        properties = resource["Properties"]
        module, _, function = properties["Handler"].rpartition(".")
        source = ROOT / properties["CodeUri"] / f"{module}.py"
        assert f"def {function}(" in source.read_text(encoding="utf-8")
        assert (ROOT / properties["CodeUri"] / "requirements.txt").is_file()


def test_template_tables_are_on_demand() -> None:
    tables = cfn_template.resources_of_type(TEMPLATE, "AWS::DynamoDB::Table")
    assert {"ShowTickets", "LambdaExecutionLog", "TicketSales"} <= set(tables)
    assert all(t["Properties"]["BillingMode"] == "PAY_PER_REQUEST" for t in tables.values())
    ttl = tables["LambdaExecutionLog"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expiresAt", "Enabled": True}


def test_template_every_output_has_a_description() -> None:
    assert all(output.get("Description") for output in TEMPLATE["Outputs"].values())


def test_template_asl_file_is_the_one_the_offline_stack_runs() -> None:
    definition = json.loads(cfn_template.state_machine_definition(TEMPLATE, "PurchaseStateMachine"))
    tables = json.dumps(definition)
    assert "${" not in tables
    assert '"TableName": "ShowTickets"' in tables


# ------------------------------------------------------------------- the catalog database

CATALOG_CHOICES = TEMPLATE["Parameters"]["CatalogDatabase"]["AllowedValues"]


def deployed(choice: str) -> dict[str, Any]:
    return cfn_template.as_deployed(TEMPLATE, {"CatalogDatabase": choice})


def references(node: Any) -> set[str]:
    """Logical ids and parameters a resource or output refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            found.add(node["Fn::GetAtt"][0])
        if "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([\w.]+)\}", node["Fn::Sub"])}
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def test_template_catalog_defaults_to_aurora_serverless_with_rds_micro_the_other_choice() -> None:
    parameter = TEMPLATE["Parameters"]["CatalogDatabase"]
    assert parameter["Default"] == "aurora-serverless-v2"
    assert set(CATALOG_CHOICES) == {"aurora-serverless-v2", "rds-db.t4g.micro"}


@pytest.mark.parametrize("choice", CATALOG_CHOICES)
def test_template_each_catalog_choice_deploys_one_database_everything_refers_to(
    choice: str,
) -> None:
    # GIVEN the template as deployed with this choice
    template = deployed(choice)
    resources = template["Resources"]
    databases = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in ("AWS::RDS::DBCluster", "AWS::RDS::DBInstance")
    }
    # THEN exactly one catalog exists, and nothing refers to a resource left out
    expected = {"aurora-serverless-v2": {"AuroraCatalog", "AuroraCatalogWriter"}}
    assert databases == expected.get(choice, {"Database"})
    known = set(resources) | set(TEMPLATE["Parameters"]) | {"AWS::StackName", "AWS::Region"}
    known |= {"AWS::URLSuffix", "AWS::AccountId", "AWS::NoValue", "AWS::StackId", "AWS::Partition"}
    for logical_id, entry in {**resources, **template["Outputs"]}.items():
        dangling = references(entry) - known
        assert not dangling, f"{logical_id} refers to {dangling}, not deployed with {choice}"


@pytest.mark.parametrize("choice", CATALOG_CHOICES)
def test_template_functions_and_output_point_at_the_chosen_catalog(choice: str) -> None:
    template = deployed(choice)
    catalog = "AuroraCatalog" if choice == "aurora-serverless-v2" else "Database"
    for function in ("FlyerFunction", "ShowCatalogFunction", "CatalogUsersFunction"):
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["DB_HOST"] == {"Fn::GetAtt": [catalog, "Endpoint.Address"]}
        assert variables["DB_PORT"] == {"Fn::GetAtt": [catalog, "Endpoint.Port"]}
    output = template["Outputs"]["DatabaseEndpoint"]["Value"]
    assert output == {"Fn::GetAtt": [catalog, "Endpoint.Address"]}


def test_template_aurora_catalog_scales_to_zero_and_nothing_keeps_it_awake() -> None:
    resources = deployed("aurora-serverless-v2")["Resources"]
    cluster = resources["AuroraCatalog"]
    properties = cluster["Properties"]
    scaling = properties["ServerlessV2ScalingConfiguration"]
    assert scaling["MinCapacity"] == 0
    assert 300 <= scaling["SecondsUntilAutoPause"] <= 86400
    # 3.08.0 is the first Aurora MySQL whose Serverless v2 scales to 0 ACU.
    version = re.fullmatch(r"8\.0\.mysql_aurora\.3\.(\d+)\.(\d+)", properties["EngineVersion"])
    assert version and (int(version[1]), int(version[2])) >= (8, 0)
    assert properties["StorageType"] == "aurora"  # Standard, not I/O-Optimized
    assert properties["StorageEncrypted"] is True
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert "EnableCloudwatchLogsExports" not in properties
    cluster_parameters = resources[properties["DBClusterParameterGroupName"]["Ref"]]
    assert cluster_parameters["Properties"]["Parameters"]["require_secure_transport"] == "ON"
    assert cluster_parameters["Properties"]["Parameters"]["binlog_format"] == "OFF"

    writer = resources["AuroraCatalogWriter"]["Properties"]
    assert writer["DBInstanceClass"] == "db.serverless"
    assert writer["MonitoringInterval"] == 0
    assert writer["EnablePerformanceInsights"] is False
    assert writer["PubliclyAccessible"] is False
    # A connection a frozen function forgot is closed long before the cluster would pause.
    instance_parameters = resources[writer["DBParameterGroupName"]["Ref"]]["Properties"]
    assert int(instance_parameters["Parameters"]["wait_timeout"]) < scaling["SecondsUntilAutoPause"]
    assert not cfn_template.resources_of_type(TEMPLATE, "AWS::RDS::DBProxy")


def test_template_rds_catalog_requires_tls_and_closes_idle_connections() -> None:
    resources = deployed("rds-db.t4g.micro")["Resources"]
    database = resources["Database"]["Properties"]
    assert database["DBInstanceClass"] == "db.t4g.micro"
    assert database["StorageEncrypted"] is True
    assert resources["Database"]["DeletionPolicy"] == "Snapshot"
    parameters = resources[database["DBParameterGroupName"]["Ref"]]["Properties"]["Parameters"]
    assert parameters["require_secure_transport"] == "1"
    assert int(parameters["wait_timeout"]) <= 60


@pytest.mark.parametrize(
    "function", ["FlyerFunction", "ShowCatalogFunction", "CatalogUsersFunction"]
)
def test_template_catalog_functions_outlast_a_resume(function: str) -> None:
    import events_db
    import events_schema

    # The last connection attempt may start at the end of the resume wait and take its connect
    # and greeting timeouts; then the schema lock and a query.
    worst_case = (
        events_db.RESUME_WAIT_SECONDS
        + events_db.CONNECT_ATTEMPT_SECONDS
        + 2 * events_db.QUERY_TIMEOUT_SECONDS
        + events_schema._LOCK_SECONDS
    )
    assert RESOURCES[function]["Properties"]["Timeout"] >= worst_case


def test_template_show_catalog_function_needs_no_permission_beyond_its_vpc() -> None:
    # It reaches the catalog only, with its caller's token; the organiser's command writes
    # ShowTickets itself.
    properties = RESOURCES["ShowCatalogFunction"]["Properties"]
    assert {s["Sid"] for s in statements(RESOURCES["ShowCatalogFunction"])} == {
        "WriteItsOwnLogs",
        "SendTraces",
        "UseTheVpc",
    }
    assert "Events" not in properties
    assert properties["VpcConfig"] == RESOURCES["FlyerFunction"]["Properties"]["VpcConfig"]
    outputs = TEMPLATE["Outputs"]
    assert outputs["ShowCatalogFunctionName"]["Value"] == {"Ref": "ShowCatalogFunction"}
    assert {"ShowTicketsTableName", "TicketSalesTableName"} <= set(outputs)


# ------------------------------------------------------------------- buyer identity

BUYER_AUTH_CHOICES = TEMPLATE["Parameters"]["BuyerAuth"]["AllowedValues"]
NO_VALUE = {"Ref": "AWS::NoValue"}
COGNITO_TYPES = {"AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient"}


def with_buyer_auth(choice: str) -> dict[str, Any]:
    return cfn_template.as_deployed(TEMPLATE, {"BuyerAuth": choice})


def purchase_route_security(template: dict[str, Any]) -> Any:
    body = template["Resources"]["PurchaseApi"]["Properties"]["DefinitionBody"]
    return body["paths"]["/purchases"]["post"].get("security", NO_VALUE)


def jwt_authorizer(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["PurchaseApi"]["Properties"]["DefinitionBody"]
    scheme = body["components"]["securitySchemes"]["BuyerToken"]
    authorizer: dict[str, Any] = scheme["x-amazon-apigateway-authorizer"]
    return authorizer


def purchase_buyer_auth(template: dict[str, Any]) -> Any:
    return template["Resources"]["PurchaseFunction"]["Properties"]["Environment"]["Variables"][
        "BUYER_AUTH"
    ]


def test_template_buyer_auth_defaults_to_cognito_with_oidc_and_none_the_others() -> None:
    assert TEMPLATE["Parameters"]["BuyerAuth"]["Default"] == "cognito"
    assert set(BUYER_AUTH_CHOICES) == {"cognito", "oidc", "none"}


def test_template_cognito_buyer_auth_trusts_the_stacks_own_user_pool_and_client() -> None:
    # GIVEN the template as deployed by default
    template = with_buyer_auth("cognito")
    resources = template["Resources"]
    # THEN the purchase route needs a token of the stack's pool, for its app client
    assert purchase_route_security(template) == [{"BuyerToken": []}]
    authorizer = jwt_authorizer(template)
    assert authorizer["type"] == "jwt"
    # The offline stack reads the same header: offline/http_api.py
    assert authorizer["identitySource"] == "$request.header.Authorization"
    issuer = authorizer["jwtConfiguration"]["issuer"]["Fn::Sub"]
    assert issuer == "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${BuyerUserPool}"
    assert authorizer["jwtConfiguration"]["audience"] == [{"Ref": "BuyerAppClient"}]
    assert purchase_buyer_auth(template) == "jwt"
    # AND the pool is on the Lite tier (nothing idle), its client public, CLI sign-in allowed
    pool = resources["BuyerUserPool"]["Properties"]
    assert pool["UserPoolTier"] == "LITE"
    client = resources["BuyerAppClient"]["Properties"]
    assert client["GenerateSecret"] is False
    assert "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]
    assert not any("ADMIN" in flow for flow in client["ExplicitAuthFlows"])
    # AND the outputs give a buyer what the README's sign-up needs
    outputs = template["Outputs"]
    assert outputs["BuyerUserPoolId"]["Value"] == {"Ref": "BuyerUserPool"}
    assert outputs["BuyerAppClientId"]["Value"] == {"Ref": "BuyerAppClient"}
    assert outputs["BuyerTokenIssuerUrl"]["Value"]["Fn::Sub"] == issuer


def test_template_oidc_buyer_auth_trusts_the_operators_issuer_and_creates_no_pool() -> None:
    template = with_buyer_auth("oidc")
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert not types & COGNITO_TYPES
    assert purchase_route_security(template) == [{"BuyerToken": []}]
    configuration = jwt_authorizer(template)["jwtConfiguration"]
    assert configuration["issuer"] == {"Ref": "BuyerTokenIssuer"}
    assert configuration["audience"] == [{"Ref": "BuyerTokenAudience"}]
    assert purchase_buyer_auth(template) == "jwt"
    assert template["Outputs"]["BuyerTokenIssuerUrl"]["Value"] == {"Ref": "BuyerTokenIssuer"}
    assert not {"BuyerUserPoolId", "BuyerAppClientId"} & set(template["Outputs"])
    # AND a deployment without the issuer or the audience is refused before anything is created
    (assertion,) = TEMPLATE["Rules"]["OidcNeedsIssuerAndAudience"]["Assertions"]
    assert TEMPLATE["Rules"]["OidcNeedsIssuerAndAudience"]["RuleCondition"] == {
        "Fn::Equals": [{"Ref": "BuyerAuth"}, "oidc"]
    }
    assert references(assertion["Assert"]) == {"BuyerTokenIssuer", "BuyerTokenAudience"}


def test_template_none_buyer_auth_leaves_the_route_anonymous() -> None:
    template = with_buyer_auth("none")
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert not types & COGNITO_TYPES
    assert purchase_route_security(template) == NO_VALUE
    body = template["Resources"]["PurchaseApi"]["Properties"]["DefinitionBody"]
    assert body["components"] == NO_VALUE
    assert purchase_buyer_auth(template) == "none"
    assert not {"BuyerUserPoolId", "BuyerAppClientId", "BuyerTokenIssuerUrl"} & set(
        template["Outputs"]
    )
