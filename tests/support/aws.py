"""The hub's AWS resources in moto, laid out like the CDK stack (tables, queues, bus, secrets, functions).

The integration tier builds them by hand here (fast, per test); the e2e tier deploys the real synthesized
template instead. ``tests/infra`` checks the template's tables have the keys and indexes used here.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tests.support.webhooks import TEST_SECRET

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
ORG_ID = "00D000000000001AAA"


@dataclass
class HubResources:
    ledger_table: str = "pshub-ledger"
    routing_table: str = "pshub-routing"
    idempotency_table: str = "pshub-idempotency"
    planning_table: str = "pshub-planning"
    analytics_bucket: str = "pshub-analytics"
    bus_name: str = "pshub-events"
    intake_queue_url: str = ""
    intake_dlq_url: str = ""
    posting_queue_url: str = ""
    posting_dlq_url: str = ""
    worker_queue_url: str = ""
    worker_dlq_url: str = ""
    margin_queue_url: str = ""
    margin_dlq_url: str = ""
    alerts_queue_url: str = ""  # subscribed to the delivery managers' topic
    alerts_topic_arn: str = ""
    psa_webhook_secret_arn: str = ""
    events_tap_url: str = ""
    webhook_secret_arn: str = ""
    state_machine_arn: str = ""
    steps_function_arn: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every envelope published on the bus so far (read through an EventBridge rule -> SQS tap)."""
        sqs = boto3.client("sqs", region_name=REGION)
        seen: list[dict[str, Any]] = getattr(self, "_seen", [])
        while True:
            got = sqs.receive_message(QueueUrl=self.events_tap_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                break
            for message in messages:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.events_tap_url, ReceiptHandle=message["ReceiptHandle"])
        self._seen = seen  # type: ignore[attr-defined]
        return [e["detail"] for e in seen if detail_type is None or e["detail-type"] == detail_type]


def create_tables(res: HubResources) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    s = {"AttributeType": "S"}
    ddb.create_table(
        TableName=res.ledger_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, **s} for n in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": f"{p}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{p}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, p in (("by_business_key", "gsi1"), ("by_status", "gsi2"))
        ],
    )
    ddb.create_table(
        TableName=res.routing_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", **s}, {"AttributeName": "sk", **s}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    ddb.create_table(
        TableName=res.planning_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", **s}, {"AttributeName": "sk", **s}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    ddb.create_table(
        TableName=res.idempotency_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", **s}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def seed_routes(res: HubResources) -> None:
    from hub.model import LegalEntity
    from hub.routing import Route, RoutingTable

    routing = RoutingTable(
        res.routing_table, boto3.resource("dynamodb", region_name=REGION).Table(res.routing_table)
    )
    routing.put_route(
        Route(
            legal_entity=LegalEntity(
                code="US01",
                name="Hub Consulting Inc.",
                country="US",
                functional_currency="USD",
                timezone="America/New_York",
            ),
            erp_system="netsuite-us",
            subsidiary_id="1",
            migration_wave="cloud-1",
        )
    )
    routing.put_route(
        Route(
            legal_entity=LegalEntity(
                code="UK01",
                name="Hub Consulting Ltd",
                country="GB",
                functional_currency="GBP",
                timezone="Europe/London",
            ),
            erp_system="netsuite-uk",
            subsidiary_id="2",
            migration_wave="cloud-1",
        )
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_function(name: str) -> str:
    iam = boto3.client("iam", region_name=REGION)
    try:
        role = iam.get_role(RoleName="pshub-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName="pshub-test-role",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
    answer = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Timeout=60,
    )
    return answer["FunctionArn"]


def asl_definition(name: str, substitutions: dict[str, str]) -> str:
    text = (ROOT / "statemachines" / f"{name}.asl.json").read_text()
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, "unsubstituted placeholder"
    return text


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _redrivable_queue(sqs: Any, name: str) -> tuple[str, str]:
    """A queue and its dead-letter queue (``{name}-dlq``, after 5 receives), as the stack's RedrivableQueue."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    redrive = {"deadLetterTargetArn": _queue_arn(sqs, dlq_url), "maxReceiveCount": "5"}
    url = sqs.create_queue(
        QueueName=name, Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "360"}
    )["QueueUrl"]
    return url, dlq_url


def build(res: HubResources) -> HubResources:
    create_tables(res)
    seed_routes(res)
    sqs = boto3.client("sqs", region_name=REGION)
    res.intake_queue_url, res.intake_dlq_url = _redrivable_queue(sqs, "pshub-intake")
    res.posting_queue_url, res.posting_dlq_url = _redrivable_queue(sqs, "pshub-posting")
    res.worker_queue_url, res.worker_dlq_url = _redrivable_queue(sqs, "pshub-workers")
    res.margin_queue_url, res.margin_dlq_url = _redrivable_queue(sqs, "pshub-margin")
    res.alerts_queue_url = sqs.create_queue(QueueName="pshub-alerts-tap")["QueueUrl"]
    sns = boto3.client("sns", region_name=REGION)
    res.alerts_topic_arn = sns.create_topic(Name="pshub-delivery-managers")["TopicArn"]
    sns.subscribe(
        TopicArn=res.alerts_topic_arn,
        Protocol="sqs",
        Endpoint=_queue_arn(sqs, res.alerts_queue_url),
        Attributes={"RawMessageDelivery": "false"},
    )
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=res.analytics_bucket)
    res.events_tap_url = sqs.create_queue(QueueName="pshub-events-tap")["QueueUrl"]
    tap_arn = _queue_arn(sqs, res.events_tap_url)
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=res.bus_name)
    events.put_rule(Name="tap", EventBusName=res.bus_name, EventPattern=json.dumps({"source": ["pshub"]}))
    events.put_targets(Rule="tap", EventBusName=res.bus_name, Targets=[{"Id": "tap", "Arn": tap_arn}])
    secrets = boto3.client("secretsmanager", region_name=REGION)
    res.webhook_secret_arn = secrets.create_secret(
        Name="pshub/webhooks/crm", SecretString=json.dumps({"secrets": [TEST_SECRET]})
    )["ARN"]
    res.psa_webhook_secret_arn = secrets.create_secret(
        Name="pshub/webhooks/psa", SecretString=json.dumps({"secrets": [TEST_SECRET]})
    )["ARN"]
    res.steps_function_arn = create_function("pshub-initiation-steps")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    res.state_machine_arn = sfn.create_state_machine(
        name="pshub-project-initiation",
        definition=asl_definition(
            "project_initiation",
            {"StepsFunctionArn": res.steps_function_arn, "ParkedQueueUrl": res.intake_dlq_url},
        ),
        roleArn="arn:aws:iam::123456789012:role/pshub-sfn",
    )["stateMachineArn"]
    res.env = {
        "POWERTOOLS_SERVICE_NAME": "pshub-test",
        "POWERTOOLS_METRICS_NAMESPACE": "PsHubTest",
        "LOG_LEVEL": "WARNING",
        "LEDGER_TABLE": res.ledger_table,
        "ROUTING_TABLE": res.routing_table,
        "IDEMPOTENCY_TABLE": res.idempotency_table,
        "INTAKE_QUEUE_URL": res.intake_queue_url,
        "WEBHOOK_SECRET_ARN": res.webhook_secret_arn,
        "CRM_ORG_ID": ORG_ID,
        "STATE_MACHINE_ARN": res.state_machine_arn,
        "EVENT_BUS_NAME": res.bus_name,
        "CRM_SECRET_ARN": "unused-in-integration",
        "PSA_SECRET_ARN": "unused-in-integration",
        "ERP_SECRET_ARNS": json.dumps({"netsuite-us": "unused", "netsuite-uk": "unused"}),
        "POSTING_QUEUE_URL": res.posting_queue_url,
        "POSTING_DLQ_URL": res.posting_dlq_url,
        "PSA_WEBHOOK_SECRET_ARN": res.psa_webhook_secret_arn,
        "WORKER_QUEUE_URL": res.worker_queue_url,
        "WORKER_DLQ_URL": res.worker_dlq_url,
        "HCM_SECRET_ARN": "unused-in-integration",
        "PLANNING_TABLE": res.planning_table,
        "MARGIN_QUEUE_URL": res.margin_queue_url,
        "MARGIN_DLQ_URL": res.margin_dlq_url,
        "ANALYTICS_BUCKET": res.analytics_bucket,
        "ALERTS_TOPIC_ARN": res.alerts_topic_arn,
        "ERP_BUDGETS": json.dumps(
            {
                "netsuite-us": {"pool": "netsuite", "limit": 5},
                "netsuite-uk": {"pool": "netsuite", "limit": 5},
            }
        ),
    }
    return res


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete everything on a queue; the messages as SQS returned them."""
    sqs = boto3.client("sqs", region_name=REGION)
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event source mapping batch built from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pshub-intake",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def lambda_context(name: str = "pshub-test-function"):
    """A Lambda context object as the runtime passes it (the local stack's own implementation)."""
    import uuid

    from local.lambda_runtime import LambdaContext

    return LambdaContext(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}",
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=30,
    )
