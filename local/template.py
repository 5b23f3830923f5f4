"""Reading the synthesized CloudFormation template, and resolving its intrinsics against the deployed stack.

The local stack fills moto's gaps *from the template*: API routes, event source mappings, state machine
definitions with their substitutions. This module is the one place that knows CloudFormation's shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # e.g. /v1/transactions/{correlationId}
    function_logical_id: str
    authorization: str


class Template:
    def __init__(self, body: dict[str, Any], physical: dict[str, str]) -> None:
        self.body = body
        self.resources: dict[str, dict[str, Any]] = body.get("Resources", {})
        self.physical = physical  # logical id -> physical id, from DescribeStackResources

    @classmethod
    def load(cls, path: Path, physical: dict[str, str]) -> Template:
        return cls(json.loads(path.read_text()), physical)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r.get("Type") == resource_type}

    # -- intrinsics -------------------------------------------------------------------------------------
    def resolve(self, value: Any, attributes: Any) -> Any:
        """Resolve Ref / Fn::GetAtt / Fn::Join / Fn::Sub-free values; ``attributes(lid, name)`` answers GetAtt."""
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg.startswith("AWS::"):
                    return {
                        "AWS::Region": "us-east-1",
                        "AWS::AccountId": "123456789012",
                        "AWS::Partition": "aws",
                        "AWS::URLSuffix": "amazonaws.com",
                        "AWS::StackName": "pshub",
                    }[arg]
                return self.physical[arg]
            if key == "Fn::GetAtt":
                lid, name = arg if isinstance(arg, list) else arg.split(".", 1)
                return attributes(lid, name)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p, attributes)) for p in parts)
        if isinstance(value, dict):
            return {k: self.resolve(v, attributes) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, attributes) for v in value]
        return value

    # -- API Gateway ------------------------------------------------------------------------------------
    def api_stage(self) -> str:
        for kind in ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment"):
            for resource in self.of_type(kind).values():
                if name := resource["Properties"].get("StageName"):
                    return str(name)
        return "live"

    def api_routes(self) -> list[Route]:
        resources = self.of_type("AWS::ApiGateway::Resource")

        def path_of(lid: str) -> str:
            props = resources[lid]["Properties"]
            parent = props["ParentId"]
            prefix = (
                path_of(parent["Ref"]) if isinstance(parent, dict) and parent.get("Ref") in resources else ""
            )
            return f"{prefix}/{props['PathPart']}"

        routes = []
        for method in self.of_type("AWS::ApiGateway::Method").values():
            props = method["Properties"]
            if props.get("HttpMethod") == "OPTIONS":
                continue
            resource_ref = props["ResourceId"]
            path = (
                path_of(resource_ref["Ref"])
                if isinstance(resource_ref, dict) and "Ref" in resource_ref
                else "/"
            )
            uri = json.dumps(props.get("Integration", {}).get("Uri", {}))
            function = next((lid for lid in self.of_type("AWS::Lambda::Function") if f'"{lid}"' in uri), None)
            if function is None:
                continue
            routes.append(Route(props["HttpMethod"], path, function, props.get("AuthorizationType", "NONE")))
        return routes
