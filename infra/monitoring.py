"""Alarms in business terms, routed to the audience that acts on them, and the operations dashboard.

Four audiences, one SNS topic each:

- ``sales-ops``: closed-won deals that did not become projects (parked in the intake dead-letter queue,
  project initiation stopped). They fix the deal in Salesforce and redrive.
- ``integration-engineers``: the platform itself is unhealthy (rejected or failed deliveries, function
  errors and throttles, API server errors, workflow timeouts and throttling).
- ``finance-ops``: approved time and expenses that could not post (parked in the posting dead-letter queue
  with the rule and values that failed), or a sweep that could not finish. They fix the entry in the PSA or
  the posting configuration, and redrive. Also projects whose margin cannot be computed from finance's data
  (parked in the margin dead-letter queue: a missing FX rate, a billing schedule in another currency): they
  add the rate or correct the currency, and redrive.
- ``delivery-managers``: business alerts, published by the margin consumer itself (not by an alarm): a
  project's planned margin fell below its floor. Its role may publish to this topic and use the key for it.

Every alarm description says what happened, who is affected and what to do, in words a sales-ops or
finance-ops reader understands; the alarm notifies its audience when it fires and again when it clears.
Nothing is subscribed by default: the ``alarmEmails`` context ({audience: [emails]}) adds email
subscriptions, or subscribe chat/on-call tools to the topics (their ARNs are stack outputs).

The topics are encrypted with a customer-managed key (rotated yearly): CloudWatch alarms cannot publish to
a topic encrypted with the AWS-managed ``alias/aws/sns`` key, whose policy cannot be changed to let
CloudWatch use it. The key and the topics admit CloudWatch only for this stack's alarms (by name prefix,
in this account), and the topics refuse anything not sent over TLS. The hub's own publishers (the margin
consumer) get ``sns:Publish`` and the key's ``kms:GenerateDataKey*``/``kms:Decrypt`` in their roles' policies
(:meth:`Monitoring.grant_publish`): the key's policy lets the account's IAM policies grant it.

No metric math: every alarm watches one metric, unlabelled (CDK renders a labelled one as a math query).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import AUDIENCES
from infra.nag import acknowledge

SALES_OPS, INTEGRATION_ENGINEERS, FINANCE_OPS, DELIVERY_MANAGERS = AUDIENCES
# The function folders whose Powertools metrics (dimension ``service``) the alarms and dashboard read.
WEBHOOK_SERVICE = "crm_webhook"
STARTER_SERVICE = "initiation_starter"
POSTING_SERVICE = "posting_consumer"
MARGIN_SERVICE = "margin_consumer"

FIVE_MINUTES = Duration.minutes(5)
FIFTEEN_MINUTES = Duration.minutes(15)
WEBHOOK_REJECTIONS_THRESHOLD = 10  # in five minutes: one bad delivery is the sender's; ten is a change

PARKED = "`python -m local.ops parked`"
REDRIVE = "`python -m local.ops redrive`"
LOOKUP = "GET /v1/transactions/{correlationId}"


@dataclass(frozen=True)
class FunctionImpact:
    """What a failing function means to the business, for its error and throttle alarms."""

    work: str  # what stops: "<work> failed"
    affected: str  # who notices, and what happens to their deals meanwhile
    recovery: str  # what brings the business back once the cause is fixed


FUNCTION_IMPACTS: dict[str, FunctionImpact] = {
    "crm_webhook": FunctionImpact(
        work="Receiving closed-won deals from Salesforce",
        affected="new deals: Salesforce gets an error and sends them again later, so their projects start "
        "late",
        recovery="Salesforce's retries then go through by themselves",
    ),
    "transactions_api": FunctionImpact(
        work="Looking up a deal's progress (GET /v1/transactions/{correlationId})",
        affected="portals and ops checking where a deal stands; no deal is lost or delayed",
        recovery="nothing needs replaying",
    ),
    "initiation_steps": FunctionImpact(
        work="A project-initiation step (customer, PSA project, WBS, billing schedule, ERP job)",
        affected="deals being set up: the step is retried, and a deal it keeps failing for is parked in "
        "the intake dead-letter queue (sales ops are told)",
        recovery=f"then redrive the parked deals with {REDRIVE}",
    ),
    "initiation_starter": FunctionImpact(
        work="Starting project initiation for queued closed-won deals",
        affected="deals waiting in the intake queue: each is retried a few times, then moved to the "
        "intake dead-letter queue",
        recovery=f"then redrive the dead-letter queue with {REDRIVE}",
    ),
    "psa_webhook": FunctionImpact(
        work="Receiving time and expense approvals from the PSA",
        affected="approved entries: the PSA retries, and the sweep picks up what it gives up on within "
        "minutes, so they post late, never twice",
        recovery="the PSA's retries and the next sweep then go through by themselves",
    ),
    "posting_sweep": FunctionImpact(
        work="The sweep for approved time and expenses the webhooks missed",
        affected="entries whose webhook was lost wait; its watermark stays put, so nothing is skipped",
        recovery="the next scheduled run reads the whole missed window again",
    ),
    "posting_consumer": FunctionImpact(
        work="Posting approved time and expenses to the ERPs",
        affected="finance: entries wait in the posting queue (retried; throttled ones are sent again "
        "later); an entry that keeps failing is held in the posting dead-letter queue",
        recovery=f"then redrive the posting dead-letter queue with {REDRIVE} --queue posting",
    ),
    "worker_sync": FunctionImpact(
        work="The hourly sync of new hires, leavers, transfers and cost-rate changes from Workday",
        affected="delivery managers: the PSA's resource pool and cost rates lag behind the HCM; the sync's "
        "watermark stays put, so no change is skipped",
        recovery="the next scheduled run reads the whole missed window again",
    ),
    "worker_consumer": FunctionImpact(
        work="Applying worker changes to the PSA's resource pool",
        affected="delivery managers: changes wait in the worker queue (retried; throttled ones are sent "
        "again later); a worker that keeps failing is held in the worker dead-letter queue",
        recovery="then redrive the worker dead-letter queue from the SQS console",
    ),
    "margin_consumer": FunctionImpact(
        work="Re-pricing the planned margin of projects whose staffing or cost rates changed",
        affected="delivery managers: projects wait in the margin queue with an outdated planned margin "
        "(retried; throttled ones are sent again later) and a margin below its floor is reported late; a "
        "project that keeps failing is held in the margin dead-letter queue",
        recovery="then redrive the margin dead-letter queue from the SQS console",
    ),
    "assignment_sweep": FunctionImpact(
        work="The nightly sweep for PSA assignment changes the webhooks missed",
        affected="delivery managers: projects restaffed without a webhook keep an outdated planned margin; "
        "the sweep's watermark stays put, so no change is skipped",
        recovery="the next nightly run reads the whole missed window again",
    ),
}


def describe(what: str, who: str, todo: str) -> str:
    """An alarm description: what happened, who is affected, what to do."""
    return f"What happened: {what} Who is affected: {who} What to do: {todo}"


class Monitoring(Construct):
    """Built in two steps: the topics first (functions that publish alerts take a topic's ARN), then
    :meth:`watch` adds the alarms and the dashboard once everything they watch exists."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        alarm_emails: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.prefix = prefix
        self.alarms: dict[str, list[cw.Alarm]] = {audience: [] for audience in AUDIENCES}

        # --- Topics: one per audience, encrypted with a key CloudWatch may use for this stack's alarms.
        alarm_arns = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{prefix}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarm_arns},
        }
        self.key = kms.Key(
            self,
            "AlertsKey",
            description=f"{prefix}: encrypts the alert topics ({', '.join(AUDIENCES)})",
            enable_key_rotation=True,
            # It protects notifications in transit only: nothing needs it once the topics are gone.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # a key policy's resource is the key itself
                conditions=from_our_alarms,
            )
        )
        emails = alarm_emails or {}
        self.topics: dict[str, sns.Topic] = {}
        for audience, construct, display in (
            (SALES_OPS, "SalesOps", f"{prefix}: deals that did not become projects"),
            (
                INTEGRATION_ENGINEERS,
                "IntegrationEngineers",
                f"{prefix}: the integration platform is unhealthy",
            ),
            (FINANCE_OPS, "FinanceOps", f"{prefix}: time and expenses that did not post"),
            (
                DELIVERY_MANAGERS,
                "DeliveryManagers",
                f"{prefix}: projects whose planned margin is below floor",
            ),
        ):
            topic = sns.Topic(
                self,
                construct,
                topic_name=f"{prefix}-{audience}",
                display_name=display,
                master_key=self.key,
                enforce_ssl=True,
            )
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="CloudWatchAlarmsPublish",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions=from_our_alarms,
                )
            )
            for address in emails.get(audience, ()):
                topic.add_subscription(subscriptions.EmailSubscription(address))
            self.topics[audience] = topic

    def watch(
        self,
        *,
        metrics_namespace: str,
        functions: Mapping[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        parked_queue: sqs.IQueue,
        posting_dlq: sqs.IQueue,
        margin_dlq: sqs.IQueue,
        rest_api: apigw.RestApi,
    ) -> None:
        """The alarms, each routed to its audience's topic, and the operations dashboard."""
        missing = sorted(set(functions) - set(FUNCTION_IMPACTS))
        if missing:
            raise ValueError(f"{missing}: say what their failure means to the business in FUNCTION_IMPACTS")
        for service in (WEBHOOK_SERVICE, STARTER_SERVICE):
            if service not in functions:
                raise ValueError(f"the dashboard and alarms read metrics of {service}, which is not deployed")
        self.namespace = metrics_namespace
        prefix = self.prefix

        # --- Sales ops: deals that did not become projects.
        self._alarm(
            "ParkedDeals",
            "parked-deals",
            SALES_OPS,
            parked_queue.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic=cw.Stats.MAXIMUM
            ),
            1,
            describe(
                "One or more closed-won deals are waiting in the intake dead-letter queue: they have no "
                "project yet (no PSA project, no ERP job).",
                "the delivery teams and customers of those deals; billing cannot start.",
                f"read each deal's reason with {PARKED} or {LOOKUP}, fix the deal in Salesforce (forward "
                f"technical reasons to the integration engineers), then redrive the queue with {REDRIVE}.",
            ),
        )
        self._alarm(
            "InitiationFailed",
            "initiation-failed",
            SALES_OPS,
            state_machine.metric_failed(period=FIFTEEN_MINUTES, statistic=cw.Stats.SUM),
            1,
            describe(
                "Project initiation stopped for at least one closed-won deal in the last 15 minutes, "
                "usually because the deal's commercial data is missing or wrong.",
                "the delivery team waiting for the project, and billing.",
                f"the deal is parked with its reason: list it with {PARKED}, fix the deal in Salesforce, "
                f"then redrive with {REDRIVE}. If no deal is parked, parking itself failed: forward this "
                "to the integration engineers.",
            ),
        )

        # --- Finance ops: approved time and expenses that did not post.
        self._alarm(
            "ParkedEntries",
            "parked-entries",
            FINANCE_OPS,
            posting_dlq.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic=cw.Stats.MAXIMUM
            ),
            1,
            describe(
                "Approved time entries or expense lines are waiting in the posting dead-letter queue: a "
                "check failed (hours, expense limit, receipt, closed project, unknown tax) or the ERP kept "
                "refusing them. They are not in the general ledger yet.",
                "the month-end close and the margin reports of those projects; workers awaiting expense "
                "reimbursement.",
                f"read each entry's reason (message attribute parkedReason in the console, {PARKED} "
                f"--queue posting, or {LOOKUP}), fix the entry in the PSA or the entity's posting policy, "
                f"then redrive with {REDRIVE} --queue posting. An entry edited in the PSA is picked up by "
                "itself.",
            ),
        )

        # Projects whose margin cannot be computed. Finance ops, not the delivery managers: both causes are
        # finance's data (the FX rates in the planning table, the billing schedule's currency), and the
        # delivery managers' topic carries the margin consumer's own below-floor alerts, which these projects
        # cannot raise until finance fixed the data.
        self._alarm(
            "ParkedMargins",
            "parked-margins",
            FINANCE_OPS,
            margin_dlq.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic=cw.Stats.MAXIMUM
            ),
            1,
            describe(
                "The planned margin of one or more projects could not be computed: they are waiting in the "
                "margin dead-letter queue because an FX rate their staffing costs need is missing, or their "
                "billing schedule is in another currency than the project.",
                "delivery managers of those projects see no up-to-date planned margin and get no "
                "below-floor warning for them; margin reports leave them out.",
                "read each project's reason (message attribute parkedReason in the SQS console, or "
                f"{LOOKUP} with the correlation id margin:<PSA project id>), add the missing FX rate or "
                "correct the billing schedule's currency, then redrive the margin dead-letter queue from "
                "the SQS console.",
            ),
        )

        # --- Integration engineers: the platform itself is unhealthy.
        self._alarm(
            "InitiationTimedOut",
            "initiation-timed-out",
            INTEGRATION_ENGINEERS,
            state_machine.metric_timed_out(period=FIFTEEN_MINUTES, statistic=cw.Stats.SUM),
            1,
            describe(
                "Project initiation for a closed-won deal ran past its time limit and was stopped part-way.",
                "that deal has no complete project; sales ops and the delivery team are waiting.",
                f"find the run (named by the correlation id) in the Step Functions console and its "
                f"checkpoints with {LOOKUP}, and fix the system that did not answer. Then park the deal "
                "(ledger status PARKED, its intake message on the intake dead-letter queue) so that "
                f"{REDRIVE} restarts it, and tell sales ops which deal is late.",
            ),
        )
        self._alarm(
            "InitiationThrottled",
            "initiation-throttled",
            INTEGRATION_ENGINEERS,
            state_machine.metric_throttled(period=FIVE_MINUTES, statistic=cw.Stats.SUM),
            1,
            describe(
                "AWS refused to start project initiation for some deals: too many were started at once.",
                "closed-won deals are delayed: they stay in the intake queue and are retried, and land in "
                "the intake dead-letter queue if that keeps failing.",
                "check the account's Step Functions quotas and the starter's concurrency; redrive any deal "
                f"that reached the dead-letter queue with {REDRIVE}.",
            ),
        )
        self._alarm(
            "WebhookRejections",
            "webhook-rejections",
            INTEGRATION_ENGINEERS,
            self._hub_metric("WebhookRejected", WEBHOOK_SERVICE),
            WEBHOOK_REJECTIONS_THRESHOLD,
            describe(
                f"The hub turned away {WEBHOOK_REJECTIONS_THRESHOLD} or more Salesforce deliveries in 5 "
                "minutes (unverified sender or a payload it cannot read): a sender's signature or payload "
                "changed.",
                "the closed-won deals in those deliveries are not recorded, so no project starts for them.",
                f"read the rejection reasons in the {WEBHOOK_SERVICE} logs, compare the signing secret "
                f"({prefix}/webhooks/crm) and the org id with Salesforce's, then re-send the affected deals.",
            ),
        )
        self._alarm(
            "WebhookErrors",
            "webhook-errors",
            INTEGRATION_ENGINEERS,
            self._hub_metric("WebhookErrors", WEBHOOK_SERVICE),
            1,
            describe(
                "The hub could not record Salesforce deliveries and asked Salesforce to retry later.",
                "those closed-won deals arrive late; none is lost while Salesforce retries.",
                f"find the failing dependency (ledger table, intake queue, signing secret) in the "
                f"{WEBHOOK_SERVICE} logs and fix it; accepted deliveries on the {prefix}-operations "
                "dashboard show the retries going through.",
            ),
        )
        for name, function in functions.items():
            impact = FUNCTION_IMPACTS[name]
            construct = "".join(part.capitalize() for part in name.split("_"))
            slug = name.replace("_", "-")
            self._alarm(
                f"{construct}Errors",
                f"{slug}-errors",
                INTEGRATION_ENGINEERS,
                function.metric_errors(period=FIVE_MINUTES, statistic=cw.Stats.SUM),
                1,
                describe(
                    f"{impact.work} failed (errors in the {name} function).",
                    f"{impact.affected}.",
                    f"read the errors in the {name} logs and fix the cause; {impact.recovery}.",
                ),
            )
            self._alarm(
                f"{construct}Throttles",
                f"{slug}-throttles",
                INTEGRATION_ENGINEERS,
                function.metric_throttles(period=FIVE_MINUTES, statistic=cw.Stats.SUM),
                1,
                describe(
                    f"{impact.work} was held back by AWS: too many runs at once (the {name} function was "
                    "throttled).",
                    f"{impact.affected}.",
                    f"check the account's Lambda concurrency quota and what else uses it; {impact.recovery}.",
                ),
            )
        self._alarm(
            "ApiServerErrors",
            "api-server-errors",
            INTEGRATION_ENGINEERS,
            rest_api.metric_server_error(period=FIVE_MINUTES, statistic=cw.Stats.SUM),
            1,
            describe(
                "The hub's API answered with server errors.",
                "Salesforce deliveries (Salesforce retries them, so deals arrive late) and anyone looking up "
                "a deal's progress.",
                f"find the failing route in the API access logs and the {prefix}-operations dashboard, "
                "then read the logs of the function behind it.",
            ),
        )

        self.dashboard = self._dashboard(
            functions, state_machine, parked_queue, posting_dlq, margin_dlq, rest_api
        )

    def grant_publish(self, audience: str, role: iam.Role) -> None:
        """Let a hub function publish to an audience's topic: ``sns:Publish`` on that topic and the key's
        ``kms:GenerateDataKey*``/``kms:Decrypt`` (SNS encrypts the message with it on the sender's behalf)."""
        topic = self.topics[audience]
        iam.Grant.add_to_principal(grantee=role, actions=["sns:Publish"], resource_arns=[topic.topic_arn])
        self.key.grant(role, "kms:GenerateDataKey*", "kms:Decrypt")
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "What SNS documents for publishing to a topic encrypted with a customer-managed key: the "
            "GenerateDataKey variants and Decrypt, on the alert topics' key only.",
        )

    # --- helpers ------------------------------------------------------------------------------------------

    def _outcomes_row(
        self,
        title: str,
        service: str,
        outcomes: Sequence[tuple[str, str]],
        dlq: sqs.IQueue,
        dlq_title: str,
        dlq_label: str,
    ) -> tuple[cw.GraphWidget, cw.GraphWidget]:
        """A queue consumer's row: its business metrics by outcome (metric, label), and what is parked."""
        return (
            cw.GraphWidget(
                title=title,
                left=[self._hub_metric(name, service, label) for name, label in outcomes],
                width=16,
            ),
            cw.GraphWidget(
                title=dlq_title,
                left=[
                    dlq.metric_approximate_number_of_messages_visible(
                        period=FIVE_MINUTES, statistic=cw.Stats.MAXIMUM, label=dlq_label
                    )
                ],
                left_y_axis=cw.YAxisProps(min=0),
                width=8,
            ),
        )

    def _hub_metric(self, metric_name: str, service: str, label: str | None = None) -> cw.Metric:
        """A Powertools (EMF) business metric of one function, summed over five minutes.

        Alarms take it without a label: a labelled metric is rendered as a metric-math query.
        """
        return cw.Metric(
            namespace=self.namespace,
            metric_name=metric_name,
            dimensions_map={"service": service},
            statistic=cw.Stats.SUM,
            period=FIVE_MINUTES,
            label=label,
        )

    def _alarm(
        self,
        construct_id: str,
        name: str,
        audience: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
    ) -> cw.Alarm:
        """``metric >= threshold`` in one period; no datapoint means nothing happened (not breaching)."""
        alarm = cw.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        action = cw_actions.SnsAction(self.topics[audience])
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)  # "it is over" reaches the same people
        self.alarms[audience].append(alarm)
        return alarm

    def _dashboard(
        self,
        functions: Mapping[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        parked_queue: sqs.IQueue,
        posting_dlq: sqs.IQueue,
        margin_dlq: sqs.IQueue,
        rest_api: apigw.RestApi,
    ) -> cw.Dashboard:
        dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self.prefix}-operations",
            default_interval=Duration.days(1),
        )
        dashboard.add_widgets(
            cw.TextWidget(
                markdown=(
                    f"## {self.prefix} operations\n"
                    f"Alerts: **{SALES_OPS}** (deals that did not become projects), "
                    f"**{INTEGRATION_ENGINEERS}** (the platform is unhealthy), "
                    f"**{FINANCE_OPS}** (time and expenses that did not post, margins finance's data blocks), "
                    f"**{DELIVERY_MANAGERS}** (planned margins below floor). "
                    f"Parked deals: {PARKED}; redrive: {REDRIVE}."
                ),
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            *(
                cw.AlarmStatusWidget(
                    title=f"Alerts for {audience}", alarms=list(self.alarms[audience]), width=8, height=4
                )
                for audience in AUDIENCES
                if self.alarms[audience]  # delivery managers hear from the margin consumer, not from alarms
            )
        )
        executions = {
            "Started": state_machine.metric_started,
            "Succeeded (project activated)": state_machine.metric_succeeded,
            "Failed (parked or stopped)": state_machine.metric_failed,
            "Timed out": state_machine.metric_timed_out,
        }
        dashboard.add_widgets(
            cw.GraphWidget(
                title="CRM deliveries: accepted vs rejected",
                left=[
                    self._hub_metric("OpportunityDeliveries", WEBHOOK_SERVICE, "Accepted"),
                    self._hub_metric("WebhookRejected", WEBHOOK_SERVICE, "Rejected"),
                    self._hub_metric("WebhookErrors", WEBHOOK_SERVICE, "Not recorded (sender retries)"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Project initiation: starts vs duplicates",
                left=[
                    self._hub_metric("InitiationStarts", STARTER_SERVICE, "Started"),
                    self._hub_metric("InitiationDuplicates", STARTER_SERVICE, "Duplicate (already handled)"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Project-initiation executions",
                left=[
                    metric(period=FIVE_MINUTES, statistic=cw.Stats.SUM, label=label)
                    for label, metric in executions.items()
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Parked deals (intake dead-letter queue)",
                left=[
                    parked_queue.metric_approximate_number_of_messages_visible(
                        period=FIVE_MINUTES, statistic=cw.Stats.MAXIMUM, label="Parked deals"
                    )
                ],
                left_y_axis=cw.YAxisProps(min=0),
                width=8,
            ),
            cw.GraphWidget(
                title="Function errors",
                left=[
                    function.metric_errors(period=FIVE_MINUTES, statistic=cw.Stats.SUM, label=name)
                    for name, function in functions.items()
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Function duration (p95, ms)",
                left=[
                    function.metric_duration(period=FIVE_MINUTES, statistic=cw.Stats.p(95), label=name)
                    for name, function in functions.items()
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            *self._outcomes_row(
                "Time and expense entries by outcome",
                POSTING_SERVICE,
                (
                    ("EntriesPosted", "Posted"),
                    ("EntriesDuplicate", "Already posted (redelivery)"),
                    ("EntriesAdjustment", "Edited after posting (adjustment)"),
                    ("EntriesHeld", "Held (closed period)"),
                    ("EntriesParked", "Parked (a check failed)"),
                    ("EntriesRejected", "Not approved / deleted"),
                    ("EntriesRetry", "Retried (throttled or unavailable)"),
                ),
                posting_dlq,
                "Parked entries (posting dead-letter queue)",
                "Parked entries",
            )
        )
        dashboard.add_widgets(
            *self._outcomes_row(
                "Projects re-priced by outcome",
                MARGIN_SERVICE,
                (
                    ("ProjectsRepriced", "Re-priced (new margin)"),
                    ("ProjectsUnchanged", "Unchanged"),
                    ("ProjectsNotPlanned", "Not initiated by the hub"),
                    ("ProjectsDuplicate", "Already re-priced (redelivery)"),
                    ("ProjectsParked", "Parked (FX rate or billing currency)"),
                    ("ProjectsRetry", "Retried (throttled or unavailable)"),
                ),
                margin_dlq,
                "Parked projects (margin dead-letter queue)",
                "Parked projects",
            )
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="API latency (ms)",
                left=[
                    rest_api.metric_latency(period=FIVE_MINUTES, statistic=cw.Stats.p(p), label=f"p{p}")
                    for p in (50, 95, 99)
                ]
                + [
                    rest_api.metric_integration_latency(
                        period=FIVE_MINUTES, statistic=cw.Stats.p(95), label="p95 in the functions"
                    )
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API requests and errors",
                left=[rest_api.metric_count(period=FIVE_MINUTES, statistic=cw.Stats.SUM, label="Requests")],
                right=[
                    rest_api.metric_client_error(
                        period=FIVE_MINUTES, statistic=cw.Stats.SUM, label="4XX (rejected by the hub)"
                    ),
                    rest_api.metric_server_error(
                        period=FIVE_MINUTES, statistic=cw.Stats.SUM, label="5XX (server errors)"
                    ),
                ],
                width=12,
            ),
        )
        return dashboard
