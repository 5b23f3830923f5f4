"""The two Lambda layers every function carries: third-party dependencies and the hub's shared code.

Both directories are built by ``local/build_layer.py`` (``make layer``); synth refuses to run without them
rather than packaging an empty layer.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import MissingSourceError

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
BUILD_HINT = "run `make layer` (python -m local.build_layer) first"


def _layer_dir(root: Path, name: str, probe: str) -> Path:
    directory = root / name
    if not (directory / probe).exists():
        raise MissingSourceError(
            f"the {name} layer is not built ({directory / probe} is missing): {BUILD_HINT}"
        )
    return directory


class HubLayers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, layers_dir: Path, prefix: str) -> None:
        super().__init__(scope, construct_id)
        deps_dir = _layer_dir(layers_dir, "deps", "python")
        if not any((deps_dir / "python").iterdir()):
            raise MissingSourceError(f"the deps layer at {deps_dir / 'python'} is empty: {BUILD_HINT}")
        hub_dir = _layer_dir(layers_dir, "hub", "python/hub/__init__.py")
        common = {
            "compatible_runtimes": [RUNTIME],
            "compatible_architectures": [ARCHITECTURE],
            "removal_policy": RemovalPolicy.DESTROY,
        }
        self.deps = lambda_.LayerVersion(
            self,
            "Deps",
            layer_version_name=f"{prefix}-deps",
            code=lambda_.Code.from_asset(str(deps_dir)),
            description="pshub runtime dependencies (arm64, CPython 3.12), built from requirements.lock",
            **common,
        )
        self.hub = lambda_.LayerVersion(
            self,
            "Hub",
            layer_version_name=f"{prefix}-hub",
            code=lambda_.Code.from_asset(str(hub_dir)),
            description="pshub shared code: canonical model, connectors, routing, ledger, observability",
            **common,
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.deps, self.hub]
