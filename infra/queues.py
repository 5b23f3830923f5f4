"""SQS: every consumer reads a queue with a dead-letter queue that ops can redrive from the console.

The DLQ's ``RedriveAllowPolicy`` names its source queue, and the source's ``RedrivePolicy`` names the DLQ.
Referencing each other's ``Arn`` attribute would be a dependency cycle, so the source queue gets a stable
name (derived from the stack name) and the DLQ names it by an ARN built from that name: no reference, no
cycle, and readable queue names for the people who redrive them.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_sqs as sqs
from constructs import Construct

DLQ_RETENTION = Duration.days(14)
SOURCE_RETENTION = Duration.days(4)
# Lambda's advice for an SQS event source: at least six times the function timeout.
VISIBILITY_FACTOR = 6


class RedrivableQueue(Construct):
    """A queue, its DLQ (redrive back allowed), SSE and TLS-only access on both."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue_name: str,
        consumer_timeout: Duration,
        max_receive_count: int = 5,
        retention: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.consumer_timeout = consumer_timeout
        source_arn = Stack.of(self).format_arn(service="sqs", resource=queue_name)
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            queue_name=f"{queue_name}-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[sqs.Queue.from_queue_arn(self, "Source", source_arn)],
            ),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention or SOURCE_RETENTION,
            visibility_timeout=Duration.seconds(consumer_timeout.to_seconds() * VISIBILITY_FACTOR),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
        )


class Queues(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        intake_consumer_timeout: Duration,
        posting_consumer_timeout: Duration,
        worker_consumer_timeout: Duration,
        margin_consumer_timeout: Duration,
    ):
        super().__init__(scope, construct_id)
        # Opportunity intake: written by the CRM webhook, read by the project-initiation starter. Its DLQ is
        # also where the state machine parks a transaction for ops to fix and redrive.
        self.intake = RedrivableQueue(
            self, "Intake", queue_name=f"{prefix}-intake", consumer_timeout=intake_consumer_timeout
        )
        # Time and expense posting: written by the PSA webhook and the sweep (pointers to PSA entries), read in
        # batches by the posting consumer. Its DLQ holds parked entries with their reason (message attributes)
        # and whatever kept failing for a reason other than throttling; ops redrive it from the console.
        self.posting = RedrivableQueue(
            self, "Posting", queue_name=f"{prefix}-posting", consumer_timeout=posting_consumer_timeout
        )
        # Worker changes: written by the scheduled worker sync (whole canonical workers, one per message), read
        # by the worker consumer that applies them to the PSA's resource pool. Its DLQ holds parked workers
        # with their reason; ops redrive them from the console once the PSA side is fixed.
        self.workers = RedrivableQueue(
            self, "Workers", queue_name=f"{prefix}-workers", consumer_timeout=worker_consumer_timeout
        )
        # Projects to re-price (a PSA project id and what changed): written by the PSA webhook (assignment
        # changes), the nightly assignment sweep and the worker consumer (cost-rate changes), read by the margin
        # consumer. Its DLQ holds parked projects with their reason (a missing FX rate, a billing schedule in
        # another currency); ops redrive them from the console once finance fixed the data.
        self.margin = RedrivableQueue(
            self, "Margin", queue_name=f"{prefix}-margin", consumer_timeout=margin_consumer_timeout
        )
