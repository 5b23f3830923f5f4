"""DynamoDB: the transaction ledger, the routing and planning tables, and the Powertools idempotency table.

Every table: on-demand, point-in-time recovery, AWS-managed encryption, a TTL attribute. Access is granted
per table with the exact actions a function uses (and the ledger's indexes by name), never ``dynamodb:*``
nor ``index/*``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

LEDGER_INDEXES = {"by_business_key": ("gsi1pk", "gsi1sk"), "by_status": ("gsi2pk", "gsi2sk")}
TTL_ATTRIBUTE = "ttl"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"  # Powertools DynamoDBPersistenceLayer default

# Action sets, named by what the code does with them (hub.ledger, hub.routing, Powertools idempotency).
READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
# Ledger items are put and updated (conditionally), never deleted: history is the point of a ledger.
RECORD = ("dynamodb:PutItem", "dynamodb:UpdateItem")
# Powertools idempotency: read the record, claim it (conditional put), complete it, delete it on failure.
IDEMPOTENCY_RECORDS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# hub.planning's batch writers (plan_on, due_on, put_fx): puts only, never deletes.
BATCH_WRITE = ("dynamodb:BatchWriteItem",)


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def _table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: str,
    sort_key: str | None,
    ttl_attribute: str,
    removal_policy: RemovalPolicy,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=_string(partition_key),
        sort_key=_string(sort_key) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=ttl_attribute,
        removal_policy=removal_policy,
    )


class Tables(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # The ledger is the business record of every transaction: it outlives the stack.
        self.ledger = _table(
            self,
            "Ledger",
            partition_key="pk",
            sort_key="sk",
            ttl_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index_name, (pk, sk) in LEDGER_INDEXES.items():
            self.ledger.add_global_secondary_index(
                index_name=index_name,
                partition_key=_string(pk),
                sort_key=_string(sk),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        # Routing is configuration the firm maintains (and the customer cross-reference): kept as well.
        self.routing = _table(
            self,
            "Routing",
            partition_key="pk",
            sort_key="sk",
            ttl_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Planning (hub.planning): workers as applied, project profiles, FX rates, margin floors and every margin
        # version computed. Floors and rates are maintained by the firm and margin history is kept: retained.
        self.planning = _table(
            self,
            "Planning",
            partition_key="pk",
            sort_key="sk",
            ttl_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Idempotency records expire (TTL) and protect only running flows: nothing to keep.
        self.idempotency = _table(
            self,
            "Idempotency",
            partition_key="id",
            sort_key=None,
            ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def ledger_index_arns(self) -> list[str]:
        return [f"{self.ledger.table_arn}/index/{name}" for name in LEDGER_INDEXES]


def grant(
    grantee: iam.IGrantable,
    table: dynamodb.ITable,
    actions: Sequence[str],
    *,
    index_arns: Sequence[str] = (),
    conditions: dict | None = None,
) -> iam.Grant:
    """Exactly ``actions`` on ``table`` (and the named indexes), nothing else."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(dict.fromkeys(actions)),
        resource_arns=[table.table_arn, *index_arns],
        conditions=conditions,
    )
