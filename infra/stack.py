"""The hub's one stack: it only wires the constructs together and publishes what the local stack discovers."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources_
from constructs import Construct

from infra import tables as tbl
from infra.analytics import Analytics
from infra.api import HubApi
from infra.config import HubConfig, SourcePaths, alarm_emails_from_context
from infra.events import HubEvents
from infra.function import FunctionDefaults, ServiceFunction
from infra.layers import HubLayers
from infra.monitoring import DELIVERY_MANAGERS, FINANCE_OPS, Monitoring
from infra.queues import Queues
from infra.secrets import HubSecrets
from infra.workflow import ProjectInitiation

STARTER_TIMEOUT = Duration.seconds(30)
STARTER_MAX_CONCURRENCY = 5
MAX_WEBHOOK_BODY_BYTES = 1_048_576
# A posting batch: read the PSA, check, claim, post (a budget slot may take 20 s to free up), record.
POSTING_TIMEOUT = Duration.seconds(180)
POSTING_BATCH_SIZE = 100  # one Business Central $batch; NetSuite takes them one per call either way
POSTING_BATCHING_WINDOW = Duration.seconds(5)
SWEEP_TIMEOUT = Duration.seconds(300)
SWEEP_OVERLAP = Duration.minutes(15)
SWEEP_MAX_SPAN = Duration.hours(6)
SWEEP_FIRST_LOOKBACK = Duration.days(7)
WORKER_SYNC_TIMEOUT = Duration.seconds(300)
WORKER_CONSUMER_TIMEOUT = Duration.seconds(120)
WORKER_SYNC_OVERLAP = Duration.minutes(15)
WORKER_SYNC_MAX_SPAN = Duration.hours(24)
WORKER_SYNC_FIRST_LOOKBACK = Duration.hours(2)
WORKER_BATCH_SIZE = 50  # one Kantata invitation call takes 50
WORKER_BATCHING_WINDOW = Duration.seconds(5)
WORKER_MAX_CONCURRENCY = 2
# A margin batch: per project, its assignments from the PSA, the planning table, the ledger, bus, bucket, topic.
MARGIN_CONSUMER_TIMEOUT = Duration.seconds(120)
MARGIN_BATCH_SIZE = 10
MARGIN_BATCHING_WINDOW = Duration.seconds(5)
MARGIN_MAX_CONCURRENCY = 2  # it reads Kantata too: within the account's rate limit with the worker consumer
ASSIGNMENT_SWEEP_TIMEOUT = Duration.seconds(300)
ASSIGNMENT_SWEEP_OVERLAP = Duration.minutes(15)
ASSIGNMENT_SWEEP_MAX_SPAN = Duration.days(2)
ASSIGNMENT_SWEEP_FIRST_LOOKBACK = Duration.days(2)


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
        queues = Queues(
            self,
            "Queues",
            prefix=prefix,
            intake_consumer_timeout=STARTER_TIMEOUT,
            posting_consumer_timeout=POSTING_TIMEOUT,
            worker_consumer_timeout=WORKER_CONSUMER_TIMEOUT,
            margin_consumer_timeout=MARGIN_CONSUMER_TIMEOUT,
        )
        intake = queues.intake
        bus = HubEvents(self, "Events", prefix=prefix)
        secrets = HubSecrets(self, "Secrets", prefix=prefix, erp_systems=config.erp_systems)
        layers = HubLayers(self, "Layers", layers_dir=sources.layers, prefix=prefix)
        analytics = Analytics(self, "Analytics")
        # Alert topics first (the margin consumer publishes to one); the alarms are added once all they watch is.
        monitoring = Monitoring(
            self,
            "Monitoring",
            prefix=prefix,
            alarm_emails=alarm_emails_from_context(self.node.try_get_context("alarmEmails")),
        )
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
                "PLANNING_TABLE": tables.planning.table_name,
                "ERP_SECRET_ARNS": self.to_json_string(
                    {system: secret.secret_arn for system, secret in secrets.erp.items()}
                ),
            },
        )
        tbl.grant(steps.role, tables.ledger, (*tbl.READ, *tbl.RECORD))
        # PlanningStore.put_project: the initiated project's profile, for its margin.
        tbl.grant(steps.role, tables.planning, ("dynamodb:PutItem",))
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

        # --- Time and expenses to finance: PSA webhook and scheduled sweep -> posting queue -> consumer.
        posting = queues.posting
        psa_webhook = ServiceFunction(
            self,
            "PsaWebhook",
            name="psa_webhook",
            defaults=defaults,
            description="POST /v1/webhooks/psa/{time-entries,expenses,assignments}: verify, enqueue pointers",
            timeout=Duration.seconds(10),
            environment={
                "IDEMPOTENCY_TABLE": tables.idempotency.table_name,
                "POSTING_QUEUE_URL": posting.queue.queue_url,
                "MARGIN_QUEUE_URL": queues.margin.queue.queue_url,
                "PSA_WEBHOOK_SECRET_ARN": secrets.psa_webhook.secret_arn,
                "MAX_BODY_BYTES": str(MAX_WEBHOOK_BODY_BYTES),
            },
        )
        tbl.grant(psa_webhook.role, tables.idempotency, tbl.IDEMPOTENCY_RECORDS)
        posting.queue.grant_send_messages(psa_webhook.role)
        queues.margin.queue.grant_send_messages(psa_webhook.role)  # assignment changes: projects to re-price
        secrets.psa_webhook.grant_read(psa_webhook.role)

        sweep = ServiceFunction(
            self,
            "PostingSweep",
            name="posting_sweep",
            defaults=defaults,
            description="Every few minutes: approved PSA time and expenses changed since the watermark -> queue",
            timeout=SWEEP_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "POSTING_QUEUE_URL": posting.queue.queue_url,
                "PSA_SECRET_ARN": secrets.psa.secret_arn,
                # The overlap re-reads the last stretch of the previous window (the PSA's clock and commit
                # lag); a run far behind catches up a span at a time; a first run looks back a week.
                "SWEEP_OVERLAP_SECONDS": str(SWEEP_OVERLAP.to_seconds()),
                "SWEEP_MAX_SPAN_SECONDS": str(SWEEP_MAX_SPAN.to_seconds()),
                "SWEEP_FIRST_LOOKBACK_SECONDS": str(SWEEP_FIRST_LOOKBACK.to_seconds()),
            },
        )
        # The sweep's watermarks (SWEEP#...) and the held entries it hands back for another look.
        tbl.grant(
            sweep.role,
            tables.ledger,
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SWEEP#*"]}},
        )
        tbl.grant(
            sweep.role,
            tables.ledger,
            ("dynamodb:Query",),
            index_arns=[f"{tables.ledger.table_arn}/index/by_status"],
        )
        posting.queue.grant_send_messages(sweep.role)
        secrets.psa.grant_read(sweep.role)
        events.Rule(
            self,
            "PostingSweepSchedule",
            description=f"Start the time and expense sweep every {config.sweep_minutes} minutes",
            schedule=events.Schedule.rate(Duration.minutes(config.sweep_minutes)),
            targets=[targets.LambdaFunction(sweep.function, retry_attempts=2)],
        )

        budgets = {
            system: {"pool": config.pool_of(system).pool, "limit": config.pool_of(system).limit}
            for system in config.erp_systems
        }
        consumer = ServiceFunction(
            self,
            "PostingConsumer",
            name="posting_consumer",
            defaults=defaults,
            description="Posting queue consumer: check and post approved time and expenses to the entity's ERP",
            timeout=POSTING_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "ROUTING_TABLE": tables.routing.table_name,
                "EVENT_BUS_NAME": bus.bus.event_bus_name,
                "POSTING_QUEUE_URL": posting.queue.queue_url,
                "POSTING_DLQ_URL": posting.dlq.queue_url,
                "PSA_SECRET_ARN": secrets.psa.secret_arn,
                "ERP_SECRET_ARNS": self.to_json_string(
                    {system: secret.secret_arn for system, secret in secrets.erp.items()}
                ),
                "ERP_BUDGETS": self.to_json_string(budgets),
            },
        )
        tbl.grant(consumer.role, tables.ledger, (*tbl.READ, *tbl.RECORD))
        tbl.grant(consumer.role, tables.routing, tbl.READ)
        # hub.concurrency: leases on the ERP pools' slots (BUDGET#...), the routing table's only write here.
        tbl.grant(
            consumer.role,
            tables.routing,
            ("dynamodb:UpdateItem",),
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["BUDGET#*"]}},
        )
        bus.bus.grant_put_events_to(consumer.role)
        secrets.psa.grant_read(consumer.role)
        for secret in secrets.erp.values():
            secret.grant_read(consumer.role)
        posting.queue.grant_send_messages(consumer.role)  # throttled entries, sent back with a delay
        posting.dlq.grant_send_messages(consumer.role)  # parked entries, held with their reason
        consumer.function.add_event_source(
            sources_.SqsEventSource(
                posting.queue,
                batch_size=POSTING_BATCH_SIZE,
                max_batching_window=POSTING_BATCHING_WINDOW,
                max_concurrency=config.posting_max_concurrency,
                report_batch_item_failures=True,
            )
        )

        # --- Worker sync: HCM changes -> the worker queue, on a schedule.
        workers, margin = queues.workers, queues.margin
        worker_sync = ServiceFunction(
            self,
            "WorkerSync",
            name="worker_sync",
            defaults=defaults,
            description="Hourly: workers the HCM changed since the watermark (hires, leavers, moves, rates) -> queue",
            timeout=WORKER_SYNC_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "WORKER_QUEUE_URL": workers.queue.queue_url,
                "HCM_SECRET_ARN": secrets.hcm.secret_arn,
                "PLANNING_TABLE": tables.planning.table_name,
                "SYNC_OVERLAP_SECONDS": str(WORKER_SYNC_OVERLAP.to_seconds()),
                "SYNC_MAX_SPAN_SECONDS": str(WORKER_SYNC_MAX_SPAN.to_seconds()),
                "SYNC_FIRST_LOOKBACK_SECONDS": str(WORKER_SYNC_FIRST_LOOKBACK.to_seconds()),
            },
        )
        # Its watermark (SWEEP#workers) and the unmappable workers it parks (worker:... transactions).
        tbl.grant(
            worker_sync.role,
            tables.ledger,
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SWEEP#*", "TX#worker:*"]}},
        )
        # PlanningStore.due and .workers: who has a future-dated change taking effect today (Query), and
        # those workers as last applied (BatchGetItem), queued again.
        tbl.grant(worker_sync.role, tables.planning, ("dynamodb:Query", "dynamodb:BatchGetItem"))
        workers.queue.grant_send_messages(worker_sync.role)
        secrets.hcm.grant_read(worker_sync.role)
        events.Rule(
            self,
            "WorkerSyncSchedule",
            description=f"Start the HCM worker sync every {config.worker_sync_minutes} minutes",
            schedule=events.Schedule.rate(Duration.minutes(config.worker_sync_minutes)),
            targets=[targets.LambdaFunction(worker_sync.function, retry_attempts=2)],
        )

        worker_consumer = ServiceFunction(
            self,
            "WorkerConsumer",
            name="worker_consumer",
            defaults=defaults,
            description="Worker queue consumer: apply each HCM change to the PSA's resource pool",
            timeout=WORKER_CONSUMER_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "EVENT_BUS_NAME": bus.bus.event_bus_name,
                "WORKER_QUEUE_URL": workers.queue.queue_url,
                "WORKER_DLQ_URL": workers.dlq.queue_url,
                "PSA_SECRET_ARN": secrets.psa.secret_arn,
                "PLANNING_TABLE": tables.planning.table_name,
                "MARGIN_QUEUE_URL": margin.queue.queue_url,
            },
        )
        tbl.grant(worker_consumer.role, tables.ledger, (*tbl.READ, *tbl.RECORD))
        # The workers as applied (read back in one BatchGetItem, kept with PutItem), the projects each is planned
        # on (Query), future-dated changes (BatchWriteItem of EFFECTIVE#... items).
        tbl.grant(worker_consumer.role, tables.planning, (*tbl.READ, "dynamodb:PutItem", *tbl.BATCH_WRITE))
        margin.queue.grant_send_messages(worker_consumer.role)  # a cost-rate change re-prices their projects
        bus.bus.grant_put_events_to(worker_consumer.role)
        secrets.psa.grant_read(worker_consumer.role)
        workers.queue.grant_send_messages(worker_consumer.role)  # throttled workers, sent back with a delay
        workers.dlq.grant_send_messages(worker_consumer.role)  # parked workers, held with their reason
        worker_consumer.function.add_event_source(
            sources_.SqsEventSource(
                workers.queue,
                batch_size=WORKER_BATCH_SIZE,
                max_batching_window=WORKER_BATCHING_WINDOW,
                # Kantata's rate limit is the account's: a few consumers at once stay within it.
                max_concurrency=WORKER_MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )

        # --- Workforce margin: projects to re-price (webhook, nightly sweep, cost-rate changes) -> queue -> consumer.
        margin_consumer = ServiceFunction(
            self,
            "MarginConsumer",
            name="margin_consumer",
            defaults=defaults,
            description="Margin queue consumer: re-price each project's planned margin, alert below its floor",
            timeout=MARGIN_CONSUMER_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "PLANNING_TABLE": tables.planning.table_name,
                "EVENT_BUS_NAME": bus.bus.event_bus_name,
                "MARGIN_DLQ_URL": margin.dlq.queue_url,
                "PSA_SECRET_ARN": secrets.psa.secret_arn,
                "ANALYTICS_BUCKET": analytics.bucket.bucket_name,
                "ALERTS_TOPIC_ARN": monitoring.topics[DELIVERY_MANAGERS].topic_arn,
                "DEFAULT_MARGIN_FLOOR": config.default_margin_floor,
            },
        )
        # Profiles, workers, FX rates, floors and margins (hub.planning): read, store versions, mark announced,
        # remember who is planned on the project. Nothing deleted.
        tbl.grant(
            margin_consumer.role,
            tables.planning,
            (*tbl.READ, "dynamodb:PutItem", "dynamodb:UpdateItem", *tbl.BATCH_WRITE),
        )
        # Its own transactions only (margin:{PSA project id}): Ledger.open, set_status, checkpoint.
        tbl.grant(
            margin_consumer.role,
            tables.ledger,
            ("dynamodb:GetItem", *tbl.RECORD),
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TX#margin:*"]}},
        )
        bus.bus.grant_put_events_to(margin_consumer.role)
        secrets.psa.grant_read(margin_consumer.role)
        margin.dlq.grant_send_messages(margin_consumer.role)  # parked projects, held with their reason
        analytics.grant_put_margins(margin_consumer.role)
        monitoring.grant_publish(DELIVERY_MANAGERS, margin_consumer.role)
        margin_consumer.function.add_event_source(
            sources_.SqsEventSource(
                margin.queue,
                batch_size=MARGIN_BATCH_SIZE,
                max_batching_window=MARGIN_BATCHING_WINDOW,
                max_concurrency=MARGIN_MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )

        assignment_sweep = ServiceFunction(
            self,
            "AssignmentSweep",
            name="assignment_sweep",
            defaults=defaults,
            description="Nightly: projects whose PSA assignments changed since the watermark -> margin queue",
            timeout=ASSIGNMENT_SWEEP_TIMEOUT,
            environment={
                "LEDGER_TABLE": tables.ledger.table_name,
                "MARGIN_QUEUE_URL": margin.queue.queue_url,
                "PSA_SECRET_ARN": secrets.psa.secret_arn,
                # Re-read the end of the last window (the PSA's clock and commit lag); a run far behind catches up
                # two days at a time; a first run looks back two days.
                "SWEEP_OVERLAP_SECONDS": str(ASSIGNMENT_SWEEP_OVERLAP.to_seconds()),
                "SWEEP_MAX_SPAN_SECONDS": str(ASSIGNMENT_SWEEP_MAX_SPAN.to_seconds()),
                "SWEEP_FIRST_LOOKBACK_SECONDS": str(ASSIGNMENT_SWEEP_FIRST_LOOKBACK.to_seconds()),
            },
        )
        # Its watermark only (SWEEP#assignments).
        tbl.grant(
            assignment_sweep.role,
            tables.ledger,
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SWEEP#assignments"]}},
        )
        margin.queue.grant_send_messages(assignment_sweep.role)
        secrets.psa.grant_read(assignment_sweep.role)
        events.Rule(
            self,
            "AssignmentSweepSchedule",
            description=f"Start the nightly PSA assignment sweep ({config.assignment_sweep_cron}, UTC)",
            schedule=events.Schedule.expression(config.assignment_sweep_cron),
            targets=[targets.LambdaFunction(assignment_sweep.function, retry_attempts=2)],
        )

        api = HubApi(
            self,
            "Api",
            webhook_function=webhook.function,
            transactions_function=transactions.function,
            psa_webhook_function=psa_webhook.function,
        )

        self.functions = {
            f.name: f
            for f in (
                webhook,
                transactions,
                steps,
                starter,
                psa_webhook,
                sweep,
                consumer,
                worker_sync,
                worker_consumer,
                margin_consumer,
                assignment_sweep,
            )
        }

        # --- Alarms routed to who acts on them (sales ops, integration engineers, finance ops), and the dashboard.
        monitoring.watch(
            metrics_namespace=defaults.metrics_namespace,
            functions={name: f.function for name, f in self.functions.items()},
            state_machine=workflow.state_machine,
            parked_queue=intake.dlq,
            posting_dlq=posting.dlq,
            margin_dlq=margin.dlq,
            rest_api=api.rest_api,
        )

        self.tables, self.queues, self.events, self.secrets = tables, queues, bus, secrets
        self.api, self.workflow, self.layers, self.monitoring = api, workflow, layers, monitoring
        self.analytics = analytics

        # --- What the local stack, the CLI and ops discover after deploy.
        outputs: dict[str, tuple[str, str]] = {
            "ApiUrl": (api.rest_api.url, "Base URL of the REST API stage (paths start with v1/)"),
            "RestApiId": (api.rest_api.rest_api_id, "REST API id"),
            "LedgerTableName": (tables.ledger.table_name, "Transaction ledger table"),
            "RoutingTableName": (tables.routing.table_name, "Routing table"),
            "IdempotencyTableName": (tables.idempotency.table_name, "Powertools idempotency table"),
            "PlanningTableName": (
                tables.planning.table_name,
                "Planning table (workers as applied, project profiles, FX rates, margin floors, margins)",
            ),
            "IntakeQueueUrl": (intake.queue.queue_url, "Opportunity intake queue"),
            "IntakeDlqUrl": (intake.dlq.queue_url, "Intake dead-letter queue (parked transactions; redrive)"),
            "PostingQueueUrl": (posting.queue.queue_url, "Time and expense posting queue"),
            "PostingDlqUrl": (
                posting.dlq.queue_url,
                "Posting dead-letter queue (parked time and expense entries, with reasons; redrive)",
            ),
            "PsaWebhookSecretArn": (secrets.psa_webhook.secret_arn, "PSA webhook signing secrets"),
            "WorkerQueueUrl": (
                workers.queue.queue_url,
                "Worker change queue (HCM -> the PSA's resource pool)",
            ),
            "WorkerDlqUrl": (
                workers.dlq.queue_url,
                "Worker dead-letter queue (parked workers, with reasons)",
            ),
            "HcmSecretArn": (secrets.hcm.secret_arn, "Workday connection secret"),
            "MarginQueueUrl": (
                margin.queue.queue_url,
                "Projects to re-price (assignment and cost-rate changes)",
            ),
            "MarginDlqUrl": (
                margin.dlq.queue_url,
                "Margin dead-letter queue (parked projects: missing FX rate, billing currency; redrive)",
            ),
            "AnalyticsBucketName": (
                analytics.bucket.bucket_name,
                "Analytics bucket (margins/date=.../hour=.../*.jsonl: every ProjectMarginChanged)",
            ),
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
            "FinanceOpsTopicArn": (
                monitoring.topics[FINANCE_OPS].topic_arn,
                "Alerts for finance ops: time and expenses that did not post, margins blocked by their data",
            ),
            "DeliveryManagersTopicArn": (
                monitoring.topics[DELIVERY_MANAGERS].topic_arn,
                "Alerts for delivery managers: projects whose planned margin fell below its floor",
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
