"""The template's Lambda functions and layers: where their code lives and what they need."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.cfn_template import ROOT, resources_of_type

# boto3.client("stepfunctions", ...) in a function's code: the AWS clients it creates.
_CLIENT_CALL = re.compile(r"""boto3\.client\(\s*["']([a-z0-9-]+)["']""")
# Values the template only knows at deploy time (ARNs, endpoints) get this stand-in locally.
PLACEHOLDER = "placeholder"


@dataclass(frozen=True)
class Layer:
    logical_id: str
    content_dir: Path
    requirements: Path | None


@dataclass(frozen=True)
class LambdaFunction:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    layers: tuple[Layer, ...]
    requirements: Path | None
    environment: Mapping[str, str]
    aws_services: tuple[str, ...]


def layers(template: Mapping[str, Any]) -> dict[str, Layer]:
    """Every AWS::Serverless::LayerVersion, by logical id."""
    return {
        logical_id: Layer(
            logical_id,
            ROOT / resource["Properties"]["ContentUri"],
            _requirements(ROOT / resource["Properties"]["ContentUri"]),
        )
        for logical_id, resource in resources_of_type(
            dict(template), "AWS::Serverless::LayerVersion"
        ).items()
    }


def lambda_functions(template: Mapping[str, Any]) -> list[LambdaFunction]:
    """Every AWS::Serverless::Function with its code folder, handler, layers and environment."""
    defaults = template.get("Globals", {}).get("Function", {})
    known_layers = layers(template)
    functions = []
    for logical_id, resource in resources_of_type(
        dict(template), "AWS::Serverless::Function"
    ).items():
        properties = resource["Properties"]
        code_dir = ROOT / properties["CodeUri"]
        module, handler = str(properties["Handler"]).rsplit(".", 1)
        layer_ids = [ref["Ref"] for ref in properties.get("Layers", []) if "Ref" in ref]
        variables = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        functions.append(
            LambdaFunction(
                logical_id=logical_id,
                code_dir=code_dir,
                module=module,
                handler=handler,
                layers=tuple(known_layers[layer_id] for layer_id in layer_ids),
                requirements=_requirements(code_dir),
                environment={
                    name: _local_value(template, value) for name, value in variables.items()
                },
                aws_services=_aws_services(code_dir),
            )
        )
    return functions


def add_code_to_path(template: Mapping[str, Any]) -> None:
    """Make every function's and layer's modules importable, as the Lambda runtime does."""
    folders = [function.code_dir for function in lambda_functions(template)]
    folders += [layer.content_dir for layer in layers(template).values()]
    for folder in folders:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def _requirements(folder: Path) -> Path | None:
    path = folder / "requirements.txt"
    return path if path.is_file() else None


def _aws_services(code_dir: Path) -> tuple[str, ...]:
    services: list[str] = []
    for source in sorted(code_dir.glob("*.py")):
        for service in _CLIENT_CALL.findall(source.read_text(encoding="utf-8")):
            if service not in services:
                services.append(service)
    return tuple(services)


def function_named(template: Mapping[str, Any], logical_id: str) -> LambdaFunction:
    (function,) = (f for f in lambda_functions(template) if f.logical_id == logical_id)
    return function


def _local_value(template: Mapping[str, Any], value: Any) -> str:
    """A literal, a parameter's default, a table's offline name (its logical id), or a
    placeholder for what only exists once deployed."""
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Mapping) and "Ref" in value:
        name = value["Ref"]
        if template["Resources"].get(name, {}).get("Type") == "AWS::DynamoDB::Table":
            return str(name)
        default = template.get("Parameters", {}).get(name, {}).get("Default")
        if default is not None:
            return str(default)
    return PLACEHOLDER
