"""A read-only view of the synthesized template, and the helpers the infra tests share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "<region>",
    "AWS::AccountId": "<account>",
    "AWS::URLSuffix": "x",
}


@dataclass
class Synth:
    app: Any
    stack: Any
    template: Any  # aws_cdk.assertions.Template
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    assembly_dir: Path

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}


def function_by_name(synth: Synth, name: str) -> tuple[str, dict[str, Any]]:
    """The Lambda of function folder ``name`` (ServiceFunction sets POWERTOOLS_SERVICE_NAME to it)."""
    for logical_id, resource in synth.of_type("AWS::Lambda::Function").items():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if variables.get("POWERTOOLS_SERVICE_NAME") == name:
            return logical_id, resource
    raise AssertionError(f"no Lambda function for functions/{name} in the template")


def role_statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement granted to a role: its inline policies and the AWS::IAM::Policy resources attached."""
    statements: list[dict[str, Any]] = []
    role = synth.resources[role_logical_id]
    for policy in role["Properties"].get("Policies", []):
        statements.extend(policy["PolicyDocument"]["Statement"])
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any, refs: dict[str, str] | None = None) -> str:
    """A template value as text: pseudo parameters and ``refs`` filled in, other references as ``<Ref:X>``."""
    refs = refs or {}
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        return PSEUDO.get(name) or refs.get(name) or f"<Ref:{name}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<GetAtt:{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part, refs) for part in parts)
    raise AssertionError(f"cannot render {value!r}")
