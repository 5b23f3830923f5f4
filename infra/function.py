"""``ServiceFunction``: the one place that knows what every hub Lambda shares.

Python 3.12 on arm64, handler ``handler.handler``, code from ``functions/<name>/``, the deps and hub layers,
JSON logs in the function's own log group (with retention, created by CloudFormation rather than by a
log-retention custom resource), X-Ray tracing, and the Powertools variables. The function's own variables
come in as a dict; their names must be the upper-cased fields of its settings model in
``layers/hub/settings.py`` (the infra tests compare them).

Each function gets its own role with no managed policy: it may write to its own log group, and everything
else is granted by the stack, resource by resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import require
from infra.layers import ARCHITECTURE, RUNTIME
from infra.nag import acknowledge

HANDLER = "handler.handler"
# Variables every function gets; each settings model inherits them from FunctionSettings.
SHARED_VARIABLES = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL")
_ALC_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


@dataclass(frozen=True)
class FunctionDefaults:
    """What the stack decides once for all its functions."""

    functions_dir: Path
    layers: Sequence[lambda_.ILayerVersion]
    metrics_namespace: str
    memory_size: int = 512
    timeout: Duration = field(default_factory=lambda: Duration.seconds(15))
    log_level: str = "INFO"
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class ServiceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        defaults: FunctionDefaults,
        environment: Mapping[str, str],
        description: str,
        memory_size: int | None = None,
        timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        clashes = sorted(set(environment) & set(SHARED_VARIABLES))
        if clashes:
            raise ValueError(f"{name}: {clashes} are set by ServiceFunction for every function")
        code_dir = require(
            defaults.functions_dir / name / "handler.py",
            f"the handler of function {name}",
            f"write functions/{name}/handler.py",
        ).parent
        log_level = defaults.log_level.upper()
        self.timeout = timeout or defaults.timeout

        self.log_group = logs.LogGroup(
            self, "Logs", retention=defaults.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"pshub function {name}",
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc", "tests"]),
            layers=list(defaults.layers),
            role=self.role,
            memory_size=memory_size or defaults.memory_size,
            timeout=self.timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Lambda's own level filter agrees with LOG_LEVEL, so Powertools never sees two levels.
            application_log_level_v2=_ALC_LEVELS[log_level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            environment={
                "POWERTOOLS_SERVICE_NAME": name,
                "POWERTOOLS_METRICS_NAMESPACE": defaults.metrics_namespace,
                "LOG_LEVEL": log_level,
                **environment,
            },
        )

        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.12 is deliberate: the deps layer is built for cp312 arm64 wheels "
            "(local/build_layer.py); the runtime moves together with that build, not alone.",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
            "resource-level permissions; it is the only statement with Resource '*'.",
        )
