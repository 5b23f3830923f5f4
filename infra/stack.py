"""The hub's one stack: it only wires the constructs together and publishes what the local stack discovers."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from constructs import Construct

from infra import tables as tbl
from infra.api import HubApi
from infra.config import HubConfig, SourcePaths, alarm_emails_from_context
from infra.events import HubEvents
from infra.function import FunctionDefaults, ServiceFunction
from infra.layers import HubLayers
from infra.monitoring import Monitoring
from infra.queues import Queues
from infra.secrets import HubSecrets
from infra.workflow import ProjectInitiation

STARTER_TIMEOUT = Duration.seconds(30)
STARTER_MAX_CONCURRENCY = 5
MAX_WEBHOOK_BODY_BYTES = 1_048_576


class HubStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: HubConfig,
        sources: SourcePaths | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, stack_name=config.stack_name, **kwargs)
        sources = sources or SourcePaths()
        prefix = config.stack_name

        tables = tbl.Tables(self, "Tables")
        queues = Queues(self, "Queues", prefix=prefix, intake_consumer_timeout=STARTER_TIMEOUT)
        intake = queues.intake
        bus = HubEvents(self, "Events", prefix=prefix)
        secrets = HubSecrets(self, "Secrets", prefix=prefix, erp_systems=config.erp_systems)
        layers = HubLayers(self, "Layers", layers_dir=sources.layers, prefix=prefix)
        defaults = FunctionDefaults(
            functions_dir=sources.functions, layers=layers.all, metrics_namespace=prefix
        )

        # --- CRM webhook: verify, record, enqueue.
        webhook = ServiceFunction(
            self,
            "CrmWebhook",
            name="crm_webhook",
            defaults=defaults,
            description="POST /v1/webhooks/crm/opportunities: verify, record, enqueue",
            timeout=Duration.seconds(10),
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "IDEMPOTENCY_TABLE": tables.idempotency.table_name,
                "INTAKE_QUEUE_URL": intake.queue.queue_url,
                "WEBHOOK_SECRET_ARN": secrets.webhook.secret_arn,
                "CRM_ORG_ID": config.crm_org_id,
                "MAX_BODY_BYTES": str(MAX_WEBHOOK_BODY_BYTES),
            },
        )
        # Writes the ledger; reads back only the header a duplicate delivery already created (Ledger.open).
        tbl.grant(webhook.role, tables.ledger, (*tbl.RECORD, "dynamodb:GetItem"))
        tbl.grant(webhook.role, tables.idempotency, tbl.IDEMPOTENCY_RECORDS)
        intake.queue.grant_send_messages(webhook.role)
        secrets.webhook.grant_read(webhook.role)

        # --- Transactions experience API: reads the ledger (by correlation id, business key, status).
        transactions = ServiceFunction(
            self,
            "TransactionsApi",
            name="transactions_api",
            defaults=defaults,
            description="GET /v1/transactions/{correlationId}: a business transaction and its checkpoints",
            timeout=Duration.seconds(10),
            environment={"LEDGER_TABLE": tables.ledger.table_name},
        )
        tbl.grant(
            transactions.role,
            tables.ledger,
            tbl.READ,
            index_arns=tables.ledger_index_arns(),
        )

        # --- Project initiation: steps function, state machine, starter on the intake queue.
        steps = ServiceFunction(
            self,
            "InitiationSteps",
            name="initiation_steps",
            defaults=defaults,
            description="Project initiation: runs the one step the state machine names",
            timeout=Duration.seconds(120),  # a connector call may retry for ~80 s (3 attempts, Retry-After)
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "ROUTING_TABLE": tables.routing.table_name,
                "IDEMPOTENCY_TABLE": tables.idempotency.table_name,
                "EVENT_BUS_NAME": bus.bus.event_bus_name,
                "CRM_SECRET_ARN": secrets.crm.secret_arn,
                "PSA_SECRET_ARN": secrets.psa.secret_arn,
                "ERP_SECRET_ARNS": self.to_json_string(
                    {system: secret.secret_arn for system, secret in secrets.erp.items()}
                ),
            },
        )
        tbl.grant(steps.role, tables.ledger, (*tbl.READ, *tbl.RECORD))
        tbl.grant(steps.role, tables.routing, tbl.READ)
        # RoutingTable.remember_customer: the one write, limited to customer cross-references (CUST#...).
        tbl.grant(
            steps.role,
            tables.routing,
            ("dynamodb:PutItem",),
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CUST#*"]}},
        )
        tbl.grant(steps.role, tables.idempotency, tbl.IDEMPOTENCY_RECORDS)
        bus.bus.grant_put_events_to(steps.role)
        secrets.grant_read_connections(steps.role)

        workflow = ProjectInitiation(
            self,
            "ProjectInitiation",
            statemachines_dir=sources.statemachines,
            steps_function=steps.function,
            parked_queue=intake.dlq,
        )

        starter = ServiceFunction(
            self,
            "InitiationStarter",
            name="initiation_starter",
            defaults=defaults,
            description="Intake queue consumer: one project-initiation execution per business transaction",
            timeout=STARTER_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "STATE_MACHINE_ARN": workflow.state_machine.state_machine_arn,
            },
        )
        tbl.grant(starter.role, tables.ledger, (*tbl.READ, *tbl.RECORD))
        workflow.start_from_queue(starter.function, intake.queue, max_concurrency=STARTER_MAX_CONCURRENCY)

        api = HubApi(
            self, "Api", webhook_function=webhook.function, transactions_function=transactions.function
        )

        self.functions = {f.name: f for f in (webhook, transactions, steps, starter)}

        # --- Alarms routed to who acts on them (sales ops, integration engineers), and the dashboard.
        monitoring = Monitoring(
            self,
            "Monitoring",
            prefix=prefix,
            metrics_namespace=defaults.metrics_namespace,
            functions={name: f.function for name, f in self.functions.items()},
            state_machine=workflow.state_machine,
            parked_queue=intake.dlq,
            rest_api=api.rest_api,
            alarm_emails=alarm_emails_from_context(self.node.try_get_context("alarmEmails")),
        )

        self.tables, self.queues, self.events, self.secrets = tables, queues, bus, secrets
        self.api, self.workflow, self.layers, self.monitoring = api, workflow, layers, monitoring

        # --- What the local stack, the CLI and ops discover after deploy.
        outputs: dict[str, tuple[str, str]] = {
            "ApiUrl": (api.rest_api.url, "Base URL of the REST API stage (paths start with v1/)"),
            "RestApiId": (api.rest_api.rest_api_id, "REST API id"),
            "LedgerTableName": (tables.ledger.table_name, "Transaction ledger table"),
            "RoutingTableName": (tables.routing.table_name, "Routing table"),
            "IdempotencyTableName": (tables.idempotency.table_name, "Powertools idempotency table"),
            "IntakeQueueUrl": (intake.queue.queue_url, "Opportunity intake queue"),
            "IntakeDlqUrl": (intake.dlq.queue_url, "Intake dead-letter queue (parked transactions; redrive)"),
            "ProjectInitiationStateMachineArn": (
                workflow.state_machine.state_machine_arn,
                "Project-initiation state machine",
            ),
            "SalesOpsTopicArn": (
                monitoring.topics["sales-ops"].topic_arn,
                "Alerts for sales ops: closed-won deals that did not become projects",
            ),
            "IntegrationEngineersTopicArn": (
                monitoring.topics["integration-engineers"].topic_arn,
                "Alerts for integration engineers: the platform itself is unhealthy",
            ),
            "EventBusName": (bus.bus.event_bus_name, "Business event bus"),
            "EventArchiveName": (bus.archive.archive_name, "Archive of every business event"),
            "WebhookSecretArn": (secrets.webhook.secret_arn, "CRM webhook signing secrets"),
            "CrmSecretArn": (secrets.crm.secret_arn, "Salesforce connection secret"),
            "PsaSecretArn": (secrets.psa.secret_arn, "Kantata connection secret"),
            "ErpSecretArns": (
                self.to_json_string({system: secret.secret_arn for system, secret in secrets.erp.items()}),
                "ERP system id -> connection secret ARN (JSON)",
            ),
        }
        for name, function in self.functions.items():
            output = "".join(part.capitalize() for part in name.split("_")) + "FunctionName"
            outputs[output] = (function.function.function_name, f"Lambda function {name}")
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)
