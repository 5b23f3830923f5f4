"""The project-initiation Standard workflow: ASL from ``statemachines/``, placeholders substituted by CDK.

The intake queue starts it through ``initiation_starter`` (one execution per business transaction); the
state machine runs each step in ``initiation_steps`` and parks what cannot proceed in the intake DLQ, from
where ops redrive it. Dependencies run one way: starter -> state machine -> steps function, DLQ.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import require
from infra.nag import acknowledge

DEFINITION_FILE = "project_initiation.asl.json"


class ProjectInitiation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        statemachines_dir: Path,
        steps_function: lambda_.IFunction,
        parked_queue: sqs.IQueue,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        definition = require(
            statemachines_dir / DEFINITION_FILE, "the project-initiation ASL", "write the state machine file"
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.substitutions = {
            "StepsFunctionArn": steps_function.function_arn,
            "ParkedQueueUrl": parked_queue.queue_url,
        }
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition.read_text()),
            definition_substitutions=self.substitutions,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                # The execution history already holds the data; the logs must not copy customer payloads.
                include_execution_data=False,
            ),
            tracing_enabled=True,
        )
        # Only the steps function, by its unqualified ARN (what the ASL's Task states call).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[steps_function.function_arn])
        )
        parked_queue.grant_send_messages(self.state_machine)
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Logging to CloudWatch Logs (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, "
            "DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, "
            "DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, "
            "GetSamplingTargets) support no resource-level permissions.",
        )

    def start_from_queue(
        self, starter: lambda_.IFunction, queue: sqs.IQueue, *, max_concurrency: int
    ) -> None:
        """``starter`` consumes ``queue`` (partial batch failures) and may start this machine only."""
        starter.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=10,
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )
        self.state_machine.grant_start_execution(starter)
