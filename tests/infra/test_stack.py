"""Properties of the synthesized hub stack: queues, tables, functions, API, workflow, outputs."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from hub.settings import FUNCTION_SETTINGS
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
        "IntakeQueueUrl",
        "IntakeDlqUrl",
        "ProjectInitiationStateMachineArn",
        "EventBusName",
        "WebhookSecretArn",
        "CrmSecretArn",
        "PsaSecretArn",
        "ErpSecretArns",
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
