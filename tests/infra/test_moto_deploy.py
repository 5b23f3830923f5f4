"""``python app.py`` synthesizes (cdk-nag included) and the assembly deploys into moto's CloudFormation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.infra.conftest import require_layers
from tests.infra.stack_view import ROOT

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cloud assembly exactly as `make synth` writes it (a fresh process running app.py)."""
    require_layers()
    outdir = tmp_path_factory.mktemp("assembly")
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    run = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return outdir


@pytest.fixture(scope="module")
def deployed(assembly: Path):
    import boto3
    from moto import mock_aws

    from infra.local_deploy import deploy_to_moto

    keys = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        with mock_aws(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = boto3.Session(region_name=REGION)
            outputs = deploy_to_moto(session, assembly, "pshub")
            skipped = sorted({str(w.message) for w in caught if "not supported by moto" in str(w.message)})
            yield session, outputs, skipped
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_synth_writes_the_template_and_assets(assembly: Path) -> None:
    assets = json.loads((assembly / "pshub.assets.json").read_text())
    displayed = {asset["displayName"] for asset in assets["files"].values()}
    assert {"Layers/Deps/Code", "Layers/Hub/Code", "CrmWebhook/Function/Code"} <= displayed
    report = json.loads((assembly / "validation-report.json").read_text())
    assert [p for p in report["pluginReports"] if p["conclusion"] != "success"] == []


def test_stack_reaches_create_complete_with_no_resource_type_skipped(deployed) -> None:
    session, _, skipped = deployed
    cloudformation = session.client("cloudformation")
    (stack,) = cloudformation.describe_stacks(StackName="pshub")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    # A new resource type moto cannot create shows here: fill the gap in infra/local_deploy.py.
    assert skipped == []
    resources = cloudformation.describe_stack_resources(StackName="pshub")["StackResources"]
    assert all(r.get("LogicalResourceId") and r.get("ResourceType") for r in resources)
    # moto reports no PhysicalResourceId for event buses, archives, deployments, methods and permissions.
    assert {r["ResourceType"] for r in resources if "PhysicalResourceId" not in r} <= {
        "AWS::Events::EventBus",
        "AWS::Events::Archive",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Method",
        "AWS::Lambda::Permission",
    }


def test_tables_exist_with_their_keys_and_indexes(deployed) -> None:
    session, outputs, _ = deployed
    dynamodb = session.client("dynamodb")
    ledger = dynamodb.describe_table(TableName=outputs["LedgerTableName"])["Table"]
    assert {i["IndexName"] for i in ledger["GlobalSecondaryIndexes"]} == {"by_business_key", "by_status"}
    assert dynamodb.describe_table(TableName=outputs["RoutingTableName"])["Table"]["TableStatus"] == "ACTIVE"
    idempotency = dynamodb.describe_table(TableName=outputs["IdempotencyTableName"])["Table"]
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    planning = dynamodb.describe_table(TableName=outputs["PlanningTableName"])["Table"]
    assert planning["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]


@pytest.mark.parametrize("queue", ["Intake", "Margin"])
def test_queue_redrives_to_its_dlq(deployed, queue: str) -> None:
    session, outputs, _ = deployed
    sqs = session.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=outputs[f"{queue}QueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=outputs[f"{queue}DlqUrl"], AttributeNames=["QueueArn"])
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq_arn["Attributes"]["QueueArn"]
    assert int(policy["maxReceiveCount"]) >= 1
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_functions_exist_with_layers_and_resolved_environment(deployed) -> None:
    session, outputs, _ = deployed
    lambda_ = session.client("lambda")
    for key in (
        "CrmWebhookFunctionName",
        "TransactionsApiFunctionName",
        "InitiationStarterFunctionName",
        "InitiationStepsFunctionName",
        "PsaWebhookFunctionName",
        "PostingSweepFunctionName",
        "PostingConsumerFunctionName",
        "MarginConsumerFunctionName",
        "AssignmentSweepFunctionName",
    ):
        config = lambda_.get_function(FunctionName=outputs[key])["Configuration"]
        assert config["Handler"] == "handler.handler"
        assert [layer["Arn"].split(":")[-2] for layer in config["Layers"]] == ["pshub-deps", "pshub-hub"]
        variables = config["Environment"]["Variables"]
        assert all(isinstance(v, str) and v and "None" not in v for v in variables.values()), variables
    steps = lambda_.get_function(FunctionName=outputs["InitiationStepsFunctionName"])["Configuration"]
    erp = json.loads(steps["Environment"]["Variables"]["ERP_SECRET_ARNS"])
    secrets = session.client("secretsmanager")
    assert {system: secrets.describe_secret(SecretId=arn)["Name"] for system, arn in erp.items()} == {
        "netsuite-us": "pshub/erp/netsuite-us",
        "netsuite-uk": "pshub/erp/netsuite-uk",
        "bc-eu": "pshub/erp/bc-eu",
    }
    mappings = lambda_.list_event_source_mappings(FunctionName=outputs["InitiationStarterFunctionName"])
    (mapping,) = mappings["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(":pshub-intake")
    margin = lambda_.list_event_source_mappings(FunctionName=outputs["MarginConsumerFunctionName"])
    (mapping,) = margin["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(":pshub-margin")
    assert mapping["BatchSize"] == 10


def test_rest_api_has_the_v1_routes_and_stage(deployed) -> None:
    session, outputs, _ = deployed
    apigateway = session.client("apigateway")
    resources = apigateway.get_resources(restApiId=outputs["RestApiId"])["items"]
    routes = {(r["path"], m) for r in resources for m in r.get("resourceMethods", {})}
    assert routes == {
        ("/v1/webhooks/crm/opportunities", "POST"),
        ("/v1/webhooks/psa/time-entries", "POST"),
        ("/v1/webhooks/psa/expenses", "POST"),
        ("/v1/webhooks/psa/assignments", "POST"),
        ("/v1/transactions/{correlationId}", "GET"),
    }
    stages = [s["stageName"] for s in apigateway.get_stages(restApiId=outputs["RestApiId"])["item"]]
    assert outputs["ApiUrl"].rstrip("/").rsplit("/", 1)[-1] in stages


def test_state_machine_definition_is_substituted(deployed) -> None:
    session, outputs, _ = deployed
    sfn = session.client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=outputs["ProjectInitiationStateMachineArn"])[
        "definition"
    ]
    assert "${" not in definition
    steps_arn = session.client("lambda").get_function(FunctionName=outputs["InitiationStepsFunctionName"])
    assert steps_arn["Configuration"]["FunctionArn"] in definition
    assert outputs["IntakeDlqUrl"] in definition


def test_bus_and_secrets_exist(deployed) -> None:
    session, outputs, _ = deployed
    assert session.client("events").describe_event_bus(Name=outputs["EventBusName"])["Name"] == "pshub-events"
    secrets = session.client("secretsmanager")
    for key in ("WebhookSecretArn", "CrmSecretArn", "PsaSecretArn"):
        assert secrets.describe_secret(SecretId=outputs[key])["ARN"] == outputs[key]
    webhook = secrets.get_secret_value(SecretId=outputs["WebhookSecretArn"])["SecretString"]
    assert json.loads(webhook) == {"secrets": []}


def test_alarms_reach_the_audience_topics_and_the_dashboard_exists(deployed) -> None:
    """Alarms and topic policies have no moto model: local_deploy creates them against the deployed stack."""
    session, outputs, _ = deployed
    cloudwatch = session.client("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNamePrefix="pshub-")["MetricAlarms"]}
    parked = alarms["pshub-parked-deals"]
    assert parked["AlarmActions"] == parked["OKActions"] == [outputs["SalesOpsTopicArn"]]
    assert parked["Dimensions"] == [
        {"Name": "QueueName", "Value": outputs["IntakeDlqUrl"].rsplit("/", 1)[-1]}
    ]
    starter = alarms["pshub-initiation-starter-errors"]
    assert starter["AlarmActions"] == [outputs["IntegrationEngineersTopicArn"]]
    assert starter["Dimensions"] == [
        {"Name": "FunctionName", "Value": outputs["InitiationStarterFunctionName"]}
    ]
    failed = alarms["pshub-initiation-failed"]
    assert failed["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": outputs["ProjectInitiationStateMachineArn"]}
    ]
    assert all(a["TreatMissingData"] == "notBreaching" for a in alarms.values())
    body = json.loads(cloudwatch.get_dashboard(DashboardName="pshub-operations")["DashboardBody"])
    shown = {arn for w in body["widgets"] if w["type"] == "alarm" for arn in w["properties"]["alarms"]}
    assert shown == {a["AlarmArn"] for a in alarms.values()}


def test_alert_topics_are_encrypted_and_tls_only(deployed) -> None:
    session, outputs, _ = deployed
    sns = session.client("sns")
    for key in ("SalesOpsTopicArn", "IntegrationEngineersTopicArn", "DeliveryManagersTopicArn"):
        attributes = sns.get_topic_attributes(TopicArn=outputs[key])["Attributes"]
        assert attributes["KmsMasterKeyId"].startswith("arn:aws:kms:")
        statements = json.loads(attributes["Policy"])["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
        assert sns.list_subscriptions_by_topic(TopicArn=outputs[key])["Subscriptions"] == []


def test_the_analytics_bucket_exists_encrypted_and_the_margin_consumer_can_write_margins(deployed) -> None:
    session, outputs, _ = deployed
    s3 = session.client("s3")
    bucket = outputs["AnalyticsBucketName"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    variables = session.client("lambda").get_function(FunctionName=outputs["MarginConsumerFunctionName"])[
        "Configuration"
    ]["Environment"]["Variables"]
    assert variables["ANALYTICS_BUCKET"] == bucket
    assert variables["ALERTS_TOPIC_ARN"] == outputs["DeliveryManagersTopicArn"]
    assert variables["MARGIN_DLQ_URL"] == outputs["MarginDlqUrl"]
    s3.put_object(Bucket=bucket, Key="margins/date=2026-11-26/hour=09/probe.jsonl", Body=b"{}\n")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="margins/")["KeyCount"] == 1


def test_the_parked_margins_alarm_reaches_finance_ops(deployed) -> None:
    session, outputs, _ = deployed
    (alarm,) = session.client("cloudwatch").describe_alarms(AlarmNames=["pshub-parked-margins"])[
        "MetricAlarms"
    ]
    assert alarm["AlarmActions"] == [outputs["FinanceOpsTopicArn"]]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": outputs["MarginDlqUrl"].rsplit("/", 1)[-1]}]


def test_email_subscriptions_and_alarm_references_are_created_locally() -> None:
    """The alarmEmails path (not in the default template): subscriptions, policies and alarms after the stack."""
    import boto3
    from moto import mock_aws

    from infra.local_deploy import _Resolver, create_set_aside, prepare_template, set_aside

    template = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "probe-sales-ops"}},
            "Email": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "Protocol": "email",
                    "TopicArn": {"Ref": "Topic"},
                    "Endpoint": "ops@example.com",
                },
            },
            "Policy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [{"Ref": "Topic"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "sns:Publish",
                                "Resource": {"Ref": "Topic"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "probe-parked-deals",
                    "AlarmActions": [{"Ref": "Topic"}],
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{"Name": "QueueName", "Value": "probe-dlq"}],
                    "Statistic": "Maximum",
                    "Period": 300,
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                },
            },
            "Dashboard": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {
                    "DashboardName": "probe",
                    "DashboardBody": {
                        "Fn::Join": [
                            "",
                            ['{"widgets":[{"alarms":["', {"Fn::GetAtt": ["Alarm", "Arn"]}, '"]}]}'],
                        ]
                    },
                },
            },
        }
    }
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        with mock_aws(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = boto3.Session(region_name=REGION)
            account = session.client("sts").get_caller_identity()["Account"]
            prepared = prepare_template(template, session.client, account=account, region=REGION)
            aside = set_aside(prepared)
            assert set(aside) == {"Email", "Policy", "Alarm"}
            session.client("cloudformation").create_stack(
                StackName="probe", TemplateBody=json.dumps(prepared)
            )
            resolver = _Resolver(session.client, "probe", account, REGION)
            create_set_aside(aside, resolver, session.client)
            assert not [w for w in caught if "not supported by moto" in str(w.message)]

            sns = session.client("sns")
            topic_arn = resolver({"Ref": "Topic"})
            assert topic_arn.endswith(":probe-sales-ops")
            (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
            assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")
            policy = json.loads(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["Policy"])
            assert policy["Statement"][0]["Resource"] == topic_arn
            cloudwatch = session.client("cloudwatch")
            (alarm,) = cloudwatch.describe_alarms(AlarmNames=["probe-parked-deals"])["MetricAlarms"]
            assert alarm["AlarmActions"] == [topic_arn]
            body = json.loads(cloudwatch.get_dashboard(DashboardName="probe")["DashboardBody"])
            assert body["widgets"][0]["alarms"] == [alarm["AlarmArn"]]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
