"""Reads template.yaml and creates its tables and state machine on any AWS-compatible endpoint.

Names and definitions come from the template, never retyped: a table is created under its
logical id (ShowTickets, LambdaExecutionLog, TicketSales), and every DefinitionSubstitutions
value is resolved from the resources it refers to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# Local state machines need a role ARN; nothing checks it offline.
LOCAL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/local-state-machine"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML loader that turns CloudFormation short tags (!Ref, !GetAtt...) into long form."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data, short tags expanded."""
    with path.open(encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - safe subclass
    return template


def as_deployed(
    template: Mapping[str, Any], parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The template as CloudFormation would deploy it with these parameter values (defaults
    for the rest): resources and outputs whose Condition is false left out, every Fn::If
    replaced by the branch it picks."""
    values = {
        name: str(parameter.get("Default", ""))
        for name, parameter in template.get("Parameters", {}).items()
    }
    values.update(parameters or {})
    unknown = set(parameters or {}) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"the template has no parameter {sorted(unknown)}")
    definitions = template.get("Conditions", {})

    def holds(condition: Any) -> bool:
        if isinstance(condition, str):
            return holds(definitions[condition])
        ((function, arguments),) = condition.items()
        if function == "Condition":
            return holds(arguments)
        if function == "Fn::Equals":
            left, right = (resolve_value(argument) for argument in arguments)
            return bool(left == right)
        if function == "Fn::Not":
            return not holds(arguments[0])
        if function == "Fn::And":
            return all(holds(argument) for argument in arguments)
        if function == "Fn::Or":
            return any(holds(argument) for argument in arguments)
        raise ValueError(f"unsupported condition function {function}")

    def resolve_value(value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) == {"Ref"} and value["Ref"] in values:
            return values[value["Ref"]]
        return value

    def pick(node: Any) -> Any:
        if isinstance(node, Mapping):
            if set(node) == {"Fn::If"}:
                condition, when_true, when_false = node["Fn::If"]
                return pick(when_true if holds(condition) else when_false)
            return {key: pick(value) for key, value in node.items()}
        if isinstance(node, list):
            return [pick(item) for item in node]
        return node

    deployed = dict(template)
    for section in ("Resources", "Outputs"):
        deployed[section] = {
            logical_id: pick(entry)
            for logical_id, entry in template.get(section, {}).items()
            if "Condition" not in entry or holds(entry["Condition"])
        }
    return deployed


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def function_logging_config(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's LoggingConfig as SAM deploys it: the Globals' map merged with its own."""
    return {
        **template.get("Globals", {}).get("Function", {}).get("LoggingConfig", {}),
        **template["Resources"][logical_id]["Properties"].get("LoggingConfig", {}),
    }


@dataclass(frozen=True)
class Function:
    """One AWS::Serverless::Function as the Lambda runtime sees it, its Globals merged in."""

    logical_id: str
    handler: str  # module.function
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: float

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


def function(
    template: Mapping[str, Any],
    logical_id: str,
    local_values: Mapping[str, str] | None = None,
    unresolved: str | None = None,
) -> Function:
    """A function of the template, its environment resolved offline: from `local_values` when it
    has the variable (what AWS resolves to a deployed resource), else a literal, a parameter's
    default or a table's offline name; anything else becomes `unresolved`, or an error."""
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = {**globals_, **template["Resources"][logical_id]["Properties"]}
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    environment = {}
    for name, value in variables.items():
        local = (local_values or {}).get(name, _offline_value(template, value))
        if local is None and unresolved is None:
            raise ValueError(f"{logical_id}: no local value for {name} = {value!r}")
        environment[name] = local if local is not None else str(unresolved)
    logging_config = function_logging_config(template, logical_id)
    if logging_config.get("LogFormat") == "JSON":
        # What Lambda sets under advanced logging controls; Powertools Logger takes its level.
        environment["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        environment["AWS_LAMBDA_LOG_LEVEL"] = logging_config.get("ApplicationLogLevel", "INFO")
    layers = [template["Resources"][layer["Ref"]] for layer in properties.get("Layers", [])]
    return Function(
        logical_id=logical_id,
        handler=str(properties["Handler"]),
        code_dir=ROOT / properties["CodeUri"],
        layer_dirs=tuple(ROOT / layer["Properties"]["ContentUri"] for layer in layers),
        environment=environment,
        memory_mb=int(properties.get("MemorySize", 128)),
        timeout_seconds=float(properties.get("Timeout", 3)),
    )


def parameter_default(template: Mapping[str, Any], name: Any) -> str | None:
    """A parameter's default as text (what the offline stack runs with), None without one."""
    default = template.get("Parameters", {}).get(name, {}).get("Default")
    return None if default is None else str(default)


def _offline_value(template: Mapping[str, Any], value: Any) -> str | None:
    if isinstance(value, str | int | float):
        return str(value)
    ref = value.get("Ref") if isinstance(value, Mapping) else None
    if ref in resources_of_type(dict(template), "AWS::DynamoDB::Table"):
        return str(ref)  # tables are created offline under their logical id
    return parameter_default(template, ref)


def create_tables(dynamodb: Any, template: dict[str, Any]) -> None:
    """Create every AWS::DynamoDB::Table of the template, named by logical id."""
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = resource["Properties"]
        dynamodb.create_table(
            TableName=logical_id,
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            BillingMode=properties["BillingMode"],
        )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=logical_id, TimeToLiveSpecification=ttl)


def resolve(value: Any, template: dict[str, Any]) -> str:
    """Resolve a substitution value that names a table (!Ref) or its ARN (!GetAtt X.Arn), or a
    parameter (!Ref: its default)."""
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    if isinstance(value, dict) and value.get("Ref") in tables:
        return str(value["Ref"])
    default = parameter_default(template, value.get("Ref")) if isinstance(value, dict) else None
    if default is not None:
        return default
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if logical_id in tables and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{logical_id}"
    if isinstance(value, str):
        return value
    raise ValueError(f"cannot resolve {value!r} offline")


def state_machine_definition(template: dict[str, Any], logical_id: str) -> str:
    """The state machine's ASL with its DefinitionSubstitutions applied, as CloudFormation does."""
    properties = template["Resources"][logical_id]["Properties"]
    definition: str = (ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
    for key, value in properties.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", resolve(value, template))
    json.loads(definition)  # the result must still be JSON
    return definition


def create_state_machine(stepfunctions: Any, template: dict[str, Any], logical_id: str) -> str:
    """Create the template's state machine under its logical id; return its ARN."""
    properties = template["Resources"][logical_id]["Properties"]
    response = stepfunctions.create_state_machine(
        name=logical_id,
        definition=state_machine_definition(template, logical_id),
        roleArn=LOCAL_ROLE_ARN,
        type=properties["Type"],
    )
    arn: str = response["stateMachineArn"]
    return arn
