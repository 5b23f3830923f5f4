"""Properties of the synthesized hub stack: queues, tables, functions, API, workflow, outputs."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match

from hub.settings import FUNCTION_SETTINGS
from infra.config import ConfigError, HubConfig
from infra.function import SHARED_VARIABLES
from infra.queues import VISIBILITY_FACTOR
from tests.infra.stack_view import Synth, function_by_name, render

FOURTEEN_DAYS = 14 * 24 * 3600


# --- queues ---------------------------------------------------------------------------------------------


def _queues(synth: Synth) -> tuple[dict, dict]:
    queues = synth.of_type("AWS::SQS::Queue")
    sources = {k: q for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    return queues, sources


def test_every_queue_is_either_a_source_with_a_dlq_or_the_dlq_of_one(synth: Synth) -> None:
    queues, sources = _queues(synth)
    dlqs = {
        s["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for s in sources.values()
    }
    assert sources, "the hub has no consumer queue"
    assert set(queues) == set(sources) | dlqs, (
        f"queues without a DLQ: {sorted(set(queues) - set(sources) - dlqs)}"
    )
    for logical_id, source in sources.items():
        policy = source["Properties"]["RedrivePolicy"]
        assert 1 <= policy["maxReceiveCount"] <= 10, logical_id


def test_each_dlq_keeps_messages_14_days_and_allows_redrive_back_to_its_source_only(synth: Synth) -> None:
    _, sources = _queues(synth)
    for logical_id, source in sources.items():
        dlq_id = source["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        dlq = synth.resources[dlq_id]["Properties"]
        assert dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS, dlq_id
        allow = dlq["RedriveAllowPolicy"]
        assert allow["redrivePermission"] == "byQueue", dlq_id
        source_arn = f"arn:aws:sqs:<region>:<account>:{source['Properties']['QueueName']}"
        assert [render(arn) for arn in allow["sourceQueueArns"]] == [source_arn], logical_id


def test_queues_are_encrypted_and_refuse_plain_http(synth: Synth) -> None:
    queues, _ = _queues(synth)
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
    tls_only = {
        ref["Ref"]
        for policy in synth.of_type("AWS::SQS::QueuePolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for ref in policy["Properties"]["Queues"]
    }
    assert tls_only == set(queues)


def test_a_queue_hides_a_message_for_at_least_six_times_its_consumers_timeout(synth: Synth) -> None:
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping")
    assert mappings
    for mapping in mappings.values():
        props = mapping["Properties"]
        queue = synth.resources[props["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
        function = synth.resources[props["FunctionName"]["Ref"]]["Properties"]
        assert queue["VisibilityTimeout"] >= VISIBILITY_FACTOR * function["Timeout"]


def test_the_starter_reads_intake_in_batches_with_partial_failures_and_bounded_concurrency(
    synth: Synth,
) -> None:
    starter_id, _ = function_by_name(synth, "initiation_starter")
    intake_id = next(
        k for k, q in _queues(synth)[1].items() if q["Properties"]["QueueName"].endswith("-intake")
    )
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": starter_id},
            "EventSourceArn": {"Fn::GetAtt": [intake_id, "Arn"]},
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": Match.any_value()},
        },
    )


def test_the_posting_consumer_reads_batches_of_100_with_partial_failures_and_the_configured_concurrency(
    synth: Synth,
) -> None:
    consumer_id, _ = function_by_name(synth, "posting_consumer")
    posting_id = next(
        k for k, q in _queues(synth)[1].items() if q["Properties"]["QueueName"].endswith("-posting")
    )
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": consumer_id},
            "EventSourceArn": {"Fn::GetAtt": [posting_id, "Arn"]},
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": Match.any_value(),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {
                "MaximumConcurrency": synth.app.node.try_get_context("postingMaxConcurrency"),
            },
        },
    )


def test_the_sweep_runs_on_the_configured_schedule(synth: Synth) -> None:
    sweep_id, _ = function_by_name(synth, "posting_sweep")
    minutes = synth.app.node.try_get_context("sweepMinutes")
    synth.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": f"rate({minutes} minutes)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [sweep_id, "Arn"]}})],
        },
    )


def test_the_consumer_knows_every_erp_systems_concurrency_pool(synth: Synth) -> None:
    _, consumer = function_by_name(synth, "posting_consumer")
    budgets = json.loads(render(consumer["Properties"]["Environment"]["Variables"]["ERP_BUDGETS"]))
    pools = synth.app.node.try_get_context("erpPools")
    assert set(budgets) == set(synth.app.node.try_get_context("erpSystems"))
    assert budgets == {system: {"pool": p["pool"], "limit": p["limit"]} for system, p in pools.items()}


# --- tables ---------------------------------------------------------------------------------------------


def test_tables_are_on_demand_encrypted_recoverable_and_expire_items(synth: Synth) -> None:
    tables = synth.of_type("AWS::DynamoDB::Table")
    assert len(tables) >= 3
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id
        assert props["TimeToLiveSpecification"]["Enabled"] is True, logical_id


@pytest.mark.parametrize(
    ("prefix", "keys", "ttl", "indexes"),
    [
        (
            "TablesLedger",
            [("pk", "HASH"), ("sk", "RANGE")],
            None,
            {"by_business_key": ["gsi1pk", "gsi1sk"], "by_status": ["gsi2pk", "gsi2sk"]},
        ),
        ("TablesRouting", [("pk", "HASH"), ("sk", "RANGE")], None, {}),
        ("TablesPlanning", [("pk", "HASH"), ("sk", "RANGE")], "ttl", {}),
        ("TablesIdempotency", [("id", "HASH")], "expiration", {}),
    ],
)
def test_table_layout_matches_the_code_that_uses_it(synth: Synth, prefix, keys, ttl, indexes) -> None:
    (table,) = [t for k, t in synth.of_type("AWS::DynamoDB::Table").items() if k.startswith(prefix)]
    props = table["Properties"]
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == keys
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert all(types[name] == "S" for name, _ in keys)
    if ttl:
        assert props["TimeToLiveSpecification"]["AttributeName"] == ttl
    found = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]]
        for i in props.get("GlobalSecondaryIndexes", [])
    }
    assert found == indexes


@pytest.mark.parametrize("prefix", ["TablesLedger", "TablesRouting", "TablesPlanning"])
def test_business_records_and_the_firms_data_outlive_the_stack(synth: Synth, prefix: str) -> None:
    """The ledger, the routing table and the planning table (FX rates, floors, margin history) are kept."""
    (table,) = [t for k, t in synth.of_type("AWS::DynamoDB::Table").items() if k.startswith(prefix)]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


# --- analytics bucket -----------------------------------------------------------------------------------


def _analytics_bucket(synth: Synth) -> tuple[str, dict]:
    ((logical_id, bucket),) = synth.of_type("AWS::S3::Bucket").items()
    return logical_id, bucket


def test_the_analytics_bucket_is_private_encrypted_versioned_and_kept(synth: Synth) -> None:
    _, bucket = _analytics_bucket(synth)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert "BucketName" not in props, "S3 names are global: let CloudFormation name it"


def test_the_analytics_bucket_keeps_current_records_and_cleans_up_what_was_replaced(synth: Synth) -> None:
    _, bucket = _analytics_bucket(synth)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert all(r["Status"] == "Enabled" for r in rules.values())
    # Records are never expired nor moved to a cheaper class (a few KB each: a transition would cost more).
    assert not any("ExpirationInDays" in r or "Transitions" in r for r in rules.values())
    assert rules["expire-replaced-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert rules["expire-replaced-versions"]["ExpiredObjectDeleteMarker"] is True
    assert rules["abort-interrupted-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_the_analytics_bucket_refuses_plain_http(synth: Synth) -> None:
    bucket_id, _ = _analytics_bucket(synth)
    (policy,) = synth.of_type("AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:*"
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {render(r) for r in deny["Resource"]} == {
        f"<GetAtt:{bucket_id}.Arn>",
        f"<GetAtt:{bucket_id}.Arn>/*",
    }


# --- workforce margin -----------------------------------------------------------------------------------


def test_the_margin_consumer_reads_batches_of_10_with_partial_failures_and_two_at_a_time(
    synth: Synth,
) -> None:
    consumer_id, _ = function_by_name(synth, "margin_consumer")
    margin_id = next(
        k for k, q in _queues(synth)[1].items() if q["Properties"]["QueueName"] == "pshub-margin"
    )
    dlq_id = synth.resources[margin_id]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert synth.resources[dlq_id]["Properties"]["QueueName"] == "pshub-margin-dlq"
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": consumer_id},
            "EventSourceArn": {"Fn::GetAtt": [margin_id, "Arn"]},
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )


def test_the_assignment_sweep_runs_nightly_on_the_configured_cron(synth: Synth) -> None:
    sweep_id, _ = function_by_name(synth, "assignment_sweep")
    cron = synth.app.node.try_get_context("assignmentSweepCron")
    assert cron == "cron(0 2 * * ? *)"
    # A scheduled rule targeting the function's Arn: what local/stack.py fire_schedule looks for.
    (rule,) = [
        r
        for r in synth.of_type("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    assert rule["Properties"]["ScheduleExpression"] == cron
    assert rule["Properties"]["State"] == "ENABLED"


def test_the_margin_consumer_gets_the_floor_bucket_and_delivery_managers_topic(synth: Synth) -> None:
    _, consumer = function_by_name(synth, "margin_consumer")
    variables = consumer["Properties"]["Environment"]["Variables"]
    assert variables["DEFAULT_MARGIN_FLOOR"] == synth.app.node.try_get_context("defaultMarginFloor") == "0.20"
    bucket_id, _ = _analytics_bucket(synth)
    assert variables["ANALYTICS_BUCKET"] == {"Ref": bucket_id}
    (topic_id,) = [
        k
        for k, t in synth.of_type("AWS::SNS::Topic").items()
        if t["Properties"]["TopicName"] == "pshub-delivery-managers"
    ]
    assert variables["ALERTS_TOPIC_ARN"] == {"Ref": topic_id}


@pytest.mark.parametrize(
    ("function", "queue"),
    [
        ("psa_webhook", "pshub-margin"),
        ("worker_consumer", "pshub-margin"),
        ("assignment_sweep", "pshub-margin"),
        ("margin_consumer", "pshub-margin-dlq"),
    ],
)
def test_margin_queue_urls_point_at_the_margin_queues(synth: Synth, function: str, queue: str) -> None:
    _, resource = function_by_name(synth, function)
    variables = resource["Properties"]["Environment"]["Variables"]
    (url,) = [v for k, v in variables.items() if k.startswith("MARGIN_") and k.endswith("_URL")]
    assert synth.resources[url["Ref"]]["Properties"]["QueueName"] == queue


@pytest.mark.parametrize(
    "function", ["initiation_steps", "worker_sync", "worker_consumer", "margin_consumer"]
)
def test_planning_table_variables_name_the_planning_table(synth: Synth, function: str) -> None:
    _, resource = function_by_name(synth, function)
    ref = resource["Properties"]["Environment"]["Variables"]["PLANNING_TABLE"]["Ref"]
    assert ref.startswith("TablesPlanning")


# --- functions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTION_SETTINGS))
def test_function_environment_is_exactly_its_settings_model(synth: Synth, name: str) -> None:
    _, function = function_by_name(synth, name)
    variables = function["Properties"]["Environment"]["Variables"]
    expected = {field.upper() for field in FUNCTION_SETTINGS[name].model_fields}
    assert set(variables) == expected
    assert set(SHARED_VARIABLES) <= set(variables)


def test_every_function_in_the_stack_has_a_settings_model(synth: Synth) -> None:
    names = {
        f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for f in synth.of_type("AWS::Lambda::Function").values()
    }
    assert names == set(FUNCTION_SETTINGS)


def test_erp_secret_arns_is_a_json_object_of_every_configured_erp_system(synth: Synth) -> None:
    _, steps = function_by_name(synth, "initiation_steps")
    rendered = render(steps["Properties"]["Environment"]["Variables"]["ERP_SECRET_ARNS"])
    erp = json.loads(rendered)
    assert list(erp) == list(synth.app.node.try_get_context("erpSystems"))
    secret_names = {
        f"<Ref:{k}>": s["Properties"]["Name"] for k, s in synth.of_type("AWS::SecretsManager::Secret").items()
    }
    assert {system: secret_names[ref] for system, ref in erp.items()} == {
        system: f"pshub/erp/{system}" for system in erp
    }


def test_functions_share_runtime_architecture_layers_tracing_and_json_logs(synth: Synth) -> None:
    layers = sorted(synth.of_type("AWS::Lambda::LayerVersion"))
    assert len(layers) == 2
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12", logical_id
        assert props["Architectures"] == ["arm64"], logical_id
        assert props["Handler"] == "handler.handler", logical_id
        assert sorted(ref["Ref"] for ref in props["Layers"]) == layers, logical_id
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        assert props["LoggingConfig"]["LogFormat"] == "JSON", logical_id
        log_group = synth.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] > 0, logical_id
        level = props["Environment"]["Variables"]["LOG_LEVEL"]
        assert props["LoggingConfig"]["ApplicationLogLevel"] == level.replace("WARNING", "WARN"), logical_id
    for layer in synth.of_type("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]


def test_no_log_retention_custom_resource(synth: Synth) -> None:
    custom = [k for k, r in synth.resources.items() if r["Type"].startswith("Custom::")]
    assert custom == [], "custom resources do not run in moto: use explicit AWS::Logs::LogGroup resources"


# --- API ------------------------------------------------------------------------------------------------


def _method(synth: Synth, http_method: str, path_part: str) -> dict:
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = synth.resources[props["ResourceId"]["Ref"]]["Properties"]
        if props["HttpMethod"] == http_method and resource["PathPart"] == path_part:
            return props
    raise AssertionError(f"no {http_method} .../{path_part}")


def test_transactions_experience_api_requires_iam_and_its_path_parameter(synth: Synth) -> None:
    method = _method(synth, "GET", "{correlationId}")
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["RequestParameters"] == {"method.request.path.correlationId": True}
    assert "RequestValidatorId" in method
    transactions_id, _ = function_by_name(synth, "transactions_api")
    assert transactions_id in json.dumps(method["Integration"]["Uri"])
    assert method["Integration"]["Type"] == "AWS_PROXY"


@pytest.mark.parametrize("path", ["time-entries", "expenses", "assignments"])
def test_psa_webhooks_are_lambda_proxies_to_the_psa_webhook_authenticated_by_its_handler(
    synth: Synth, path: str
) -> None:
    method = _method(synth, "POST", path)
    assert method["AuthorizationType"] == "NONE"
    assert "RequestValidatorId" in method
    assert set(method["RequestModels"]) == {"application/json"}
    psa_webhook_id, _ = function_by_name(synth, "psa_webhook")
    assert psa_webhook_id in json.dumps(method["Integration"]["Uri"])
    assert method["Integration"]["Type"] == "AWS_PROXY"
    parent = synth.resources[synth.resources[method["ResourceId"]["Ref"]]["Properties"]["ParentId"]["Ref"]]
    assert parent["Properties"]["PathPart"] == "psa"


def test_crm_webhook_is_a_lambda_proxy_authenticated_by_its_handler(synth: Synth) -> None:
    method = _method(synth, "POST", "opportunities")
    assert method["AuthorizationType"] == "NONE"
    webhook_id, _ = function_by_name(synth, "crm_webhook")
    assert webhook_id in json.dumps(method["Integration"]["Uri"])
    assert method["Integration"]["Type"] == "AWS_PROXY"


def test_routes_are_versioned_under_v1(synth: Synth) -> None:
    root_children = [
        r["Properties"]["PathPart"]
        for r in synth.of_type("AWS::ApiGateway::Resource").values()
        if "Fn::GetAtt" in r["Properties"]["ParentId"]
    ]
    assert root_children == ["v1"]


def test_stage_logs_access_throttles_and_never_logs_bodies(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert "DestinationArn" in props["AccessLogSetting"]
    (settings,) = props["MethodSettings"]
    assert settings["DataTraceEnabled"] is False
    assert settings["LoggingLevel"] in ("ERROR", "INFO")
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert props["TracingEnabled"] is True
    assert synth.of_type("AWS::ApiGateway::Account"), "API Gateway needs its CloudWatch role to write logs"


# --- workflow, events, secrets -------------------------------------------------------------------------


def test_state_machine_is_standard_logged_and_traced(synth: Synth) -> None:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["Destinations"]
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_the_bus_is_named_after_the_stack_and_fully_archived(synth: Synth) -> None:
    (bus_id, bus), *_ = synth.of_type("AWS::Events::EventBus").items()
    assert bus["Properties"]["Name"] == "pshub-events"
    (archive,) = synth.of_type("AWS::Events::Archive").values()
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert archive["Properties"]["EventPattern"] == {"account": [{"Ref": "AWS::AccountId"}]}


def test_secrets_are_retained_and_carry_no_generated_value(synth: Synth) -> None:
    secrets = synth.of_type("AWS::SecretsManager::Secret")
    names = {s["Properties"]["Name"] for s in secrets.values()}
    erp = {f"pshub/erp/{system}" for system in synth.app.node.try_get_context("erpSystems")}
    assert names == {
        "pshub/webhooks/crm",
        "pshub/webhooks/psa",
        "pshub/crm/salesforce",
        "pshub/psa/kantata",
        "pshub/hcm/workday",
        *erp,
    }
    for logical_id, secret in secrets.items():
        assert secret["DeletionPolicy"] == "Retain", logical_id
        assert "GenerateSecretString" not in secret["Properties"], logical_id
        placeholder = json.loads(secret["Properties"]["SecretString"])
        assert all(not value for value in placeholder.values()), f"{logical_id} holds a value: {placeholder}"


# --- outputs --------------------------------------------------------------------------------------------


def test_outputs_let_the_local_stack_discover_every_resource(synth: Synth) -> None:
    expected = {
        "ApiUrl",
        "RestApiId",
        "LedgerTableName",
        "RoutingTableName",
        "IdempotencyTableName",
        "PlanningTableName",
        "IntakeQueueUrl",
        "IntakeDlqUrl",
        "ProjectInitiationStateMachineArn",
        "EventBusName",
        "WebhookSecretArn",
        "CrmSecretArn",
        "PsaSecretArn",
        "ErpSecretArns",
        "MarginQueueUrl",
        "MarginDlqUrl",
        "AnalyticsBucketName",
        "DeliveryManagersTopicArn",
    }
    assert expected <= set(synth.outputs)
    function_outputs = {k for k in synth.outputs if k.endswith("FunctionName")}
    assert len(function_outputs) == len(FUNCTION_SETTINGS)


def test_the_stack_takes_its_name_and_erp_systems_from_context(tmp_path) -> None:
    from app import build_app

    _, stack = build_app(
        {"stackName": "acme-hub", "erpSystems": ["bc-de"], "crmOrgId": "00D000000000002"},
        outdir=tmp_path,
        nag=False,
    )
    assert stack.stack_name == "acme-hub"
    assert list(stack.secrets.erp) == ["bc-de"]


def test_the_sweep_cron_margin_floor_and_sync_interval_come_from_context(tmp_path) -> None:
    from aws_cdk.assertions import Template

    from app import build_app

    _, stack = build_app(
        {
            "assignmentSweepCron": "cron(30 3 ? * MON-FRI *)",
            "defaultMarginFloor": "0.35",
            "workerSyncMinutes": 30,
            "sweepMinutes": 5,
        },
        outdir=tmp_path,
        nag=False,
    )
    resources = Template.from_stack(stack).to_json()["Resources"]
    folders = {
        logical_id: r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    schedules = {
        folders[target["Arn"]["Fn::GetAtt"][0]]: r["Properties"]["ScheduleExpression"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        for target in r["Properties"]["Targets"]
    }
    assert schedules == {
        "assignment_sweep": "cron(30 3 ? * MON-FRI *)",
        "worker_sync": "rate(30 minutes)",
        "posting_sweep": "rate(5 minutes)",
    }
    (consumer,) = [resources[k] for k, name in folders.items() if name == "margin_consumer"]
    assert consumer["Properties"]["Environment"]["Variables"]["DEFAULT_MARGIN_FLOOR"] == "0.35"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"assignmentSweepCron": "rate(1 day)"}, "assignmentSweepCron 'rate(1 day)'"),
        ({"assignmentSweepCron": "cron(0 2 * * *)"}, "give an EventBridge cron expression"),
        ({"assignmentSweepCron": "cron(0 2 * * * *)"}, "'?' in day-of-month or day-of-week"),
        ({"assignmentSweepCron": "cron(0 2 ? * ? *)"}, "'?' in day-of-month or day-of-week"),
        ({"defaultMarginFloor": "20%"}, "defaultMarginFloor '20%'"),
        ({"defaultMarginFloor": "1.5"}, "between 0 and 1"),
        ({"defaultMarginFloor": "-0.1"}, "between 0 and 1"),
    ],
)
def test_sweep_cron_and_margin_floor_errors_say_what_is_wrong(context: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        HubConfig.from_context(context)


@pytest.mark.parametrize(
    ("context", "cron", "floor"),
    [
        ({}, "cron(0 2 * * ? *)", "0.20"),
        ({"assignmentSweepCron": " cron(15 1 ? * SUN *) "}, "cron(15 1 ? * SUN *)", "0.20"),
        ({"defaultMarginFloor": 0.25}, "cron(0 2 * * ? *)", "0.25"),  # a JSON number from -c
        ({"defaultMarginFloor": "0"}, "cron(0 2 * * ? *)", "0"),
        ({"defaultMarginFloor": "1.0"}, "cron(0 2 * * ? *)", "1.0"),
    ],
)
def test_sweep_cron_and_margin_floor_context_forms(context: dict, cron: str, floor: str) -> None:
    config = HubConfig.from_context(context)
    assert (config.assignment_sweep_cron, config.default_margin_floor) == (cron, floor)


def test_synth_without_built_layers_says_to_run_make_layer(tmp_path) -> None:
    from app import build_app
    from infra.config import MissingSourceError, SourcePaths

    with pytest.raises(MissingSourceError, match=r"run `make layer`"):
        build_app(outdir=tmp_path, nag=False, sources=SourcePaths(layers=tmp_path / "no-layers"))


def test_context_errors_are_reported_before_synth(tmp_path) -> None:
    from app import build_app
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="crmOrgId"):
        build_app({"crmOrgId": "not an org"}, outdir=tmp_path, nag=False)


def test_the_worker_sync_runs_on_the_configured_schedule_and_its_consumer_reads_the_worker_queue(
    synth: Synth,
) -> None:
    sync_id, _ = function_by_name(synth, "worker_sync")
    consumer_id, _ = function_by_name(synth, "worker_consumer")
    minutes = synth.app.node.try_get_context("workerSyncMinutes")
    hours, rest = divmod(minutes, 60)
    # CDK writes whole hours as hours: rate(1 hour), rate(2 hours)
    expression = f"rate({minutes} minutes)" if rest else f"rate({hours} hour{'s' if hours > 1 else ''})"
    synth.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": expression,
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [sync_id, "Arn"]}})],
        },
    )
    workers_id = next(
        k for k, q in _queues(synth)[1].items() if q["Properties"]["QueueName"].endswith("-workers")
    )
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": consumer_id},
            "EventSourceArn": {"Fn::GetAtt": [workers_id, "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": Match.any_value()},
        },
    )
