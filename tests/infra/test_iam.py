"""Least privilege, read off the synthesized policies: who may do what, on which resource."""

from __future__ import annotations

from typing import Any

import pytest

from infra.analytics import MARGINS_PREFIX
from tests.infra.stack_view import ROOT, Synth, as_list, function_by_name, role_statements

DATA_SERVICES = ("dynamodb", "sqs", "s3", "secretsmanager", "events", "states", "lambda")
# The only actions AWS offers no resource-level permission for, that the stack grants.
RESOURCE_STAR_ALLOWED = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def _all_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in synth.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def test_no_statement_grants_a_wildcard_action(synth: Synth) -> None:
    offending = [
        (logical_id, action)
        for logical_id, statement in _all_statements(synth)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if action == "*" or (action.split(":")[0] in DATA_SERVICES and "*" in action)
    ]
    assert offending == []


def test_resource_star_only_for_actions_without_resource_level_permissions(synth: Synth) -> None:
    offending = [
        (logical_id, sorted(set(as_list(statement["Action"])) - RESOURCE_STAR_ALLOWED))
        for logical_id, statement in _all_statements(synth)
        if statement["Effect"] == "Allow"
        and "*" in as_list(statement["Resource"])
        and not set(as_list(statement["Action"])) <= RESOURCE_STAR_ALLOWED
    ]
    assert offending == []


def test_no_managed_policy_on_function_roles(synth: Synth) -> None:
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert not synth.resources[role_id]["Properties"].get("ManagedPolicyArns"), logical_id


def _grants(synth: Synth, function: str) -> dict[str, set[str]]:
    """Resource (as a logical id, or the rendered expression) -> actions granted to that function's role."""
    _, resource = function_by_name(synth, function)
    role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
    grants: dict[str, set[str]] = {}
    for statement in role_statements(synth, role_id):
        assert statement["Effect"] == "Allow"
        for target in as_list(statement["Resource"]):
            key = _target(target)
            grants.setdefault(key, set()).update(as_list(statement["Action"]))
    return grants


def _target(target: Any) -> str:
    if isinstance(target, str):
        return target
    if "Ref" in target:
        return target["Ref"]
    if "Fn::GetAtt" in target:
        return target["Fn::GetAtt"][0]
    if "Fn::Join" in target:
        parts = target["Fn::Join"][1]
        return "".join(_target(p) for p in parts)
    raise AssertionError(target)


def _logical(synth: Synth, resource_type: str, prefix: str) -> str:
    (logical_id,) = [k for k in synth.of_type(resource_type) if k.startswith(prefix)]
    return logical_id


def _secret_named(synth: Synth, name: str) -> str:
    (logical_id,) = [
        k for k, v in synth.of_type("AWS::SecretsManager::Secret").items() if v["Properties"]["Name"] == name
    ]
    return logical_id


def _data_grants(synth: Synth, function: str) -> dict[str, set[str]]:
    """Grants on the hub's data resources only (log group and X-Ray left out)."""
    return {
        k: v
        for k, v in _grants(synth, function).items()
        if k != "*" and synth.resources.get(k.split("/")[0], {}).get("Type") != "AWS::Logs::LogGroup"
    }


def test_webhook_writes_ledger_and_idempotency_sends_to_intake_reads_its_secret(synth: Synth) -> None:
    ledger = _logical(synth, "AWS::DynamoDB::Table", "TablesLedger")
    idempotency = _logical(synth, "AWS::DynamoDB::Table", "TablesIdempotency")
    intake = _logical(synth, "AWS::SQS::Queue", "QueuesIntakeQueue")
    secret = _logical(synth, "AWS::SecretsManager::Secret", "SecretsCrmWebhook")
    grants = _data_grants(synth, "crm_webhook")
    assert set(grants) == {ledger, idempotency, intake, secret}
    # GetItem only to read back the header a duplicate delivery already created; no query, scan or delete.
    assert grants[ledger] == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"}
    assert grants[intake] <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert grants[secret] <= {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_transactions_api_only_reads_the_ledger_and_its_indexes(synth: Synth) -> None:
    ledger = _logical(synth, "AWS::DynamoDB::Table", "TablesLedger")
    grants = _data_grants(synth, "transactions_api")
    assert set(grants) == {ledger, f"{ledger}/index/by_business_key", f"{ledger}/index/by_status"}
    for actions in grants.values():
        assert actions <= {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}


def test_steps_reach_their_tables_bus_and_connection_secrets_only(synth: Synth) -> None:
    tables = {
        p: _logical(synth, "AWS::DynamoDB::Table", p)
        for p in ("TablesLedger", "TablesRouting", "TablesIdempotency", "TablesPlanning")
    }
    bus = _logical(synth, "AWS::Events::EventBus", "EventsBus")
    secrets = {
        k
        for k in synth.of_type("AWS::SecretsManager::Secret")
        if not k.startswith(("SecretsCrmWebhook", "SecretsPsaWebhook", "SecretsHcm"))
    }
    grants = _data_grants(synth, "initiation_steps")
    assert set(grants) == {*tables.values(), bus, *secrets}
    assert grants[bus] == {"events:PutEvents"}
    assert not any(a in grants[tables["TablesLedger"]] for a in ("dynamodb:DeleteItem", "dynamodb:Scan"))
    # PlanningStore.put_project: the initiated project's profile, nothing read back.
    assert grants[tables["TablesPlanning"]] == {"dynamodb:PutItem"}
    for secret in secrets:
        assert grants[secret] <= {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_steps_write_routing_only_for_customer_cross_references(synth: Synth) -> None:
    routing = _logical(synth, "AWS::DynamoDB::Table", "TablesRouting")
    _, resource = function_by_name(synth, "initiation_steps")
    statements = role_statements(synth, resource["Properties"]["Role"]["Fn::GetAtt"][0])
    writes = [
        s
        for s in statements
        if {"Fn::GetAtt": [routing, "Arn"]} in as_list(s["Resource"])
        and set(as_list(s["Action"])) & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    ]
    assert len(writes) == 1
    assert as_list(writes[0]["Action"]) == ["dynamodb:PutItem"]
    assert writes[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CUST#*"]}}


def test_starter_may_start_this_state_machine_only(synth: Synth) -> None:
    machine = _logical(synth, "AWS::StepFunctions::StateMachine", "ProjectInitiation")
    grants = _data_grants(synth, "initiation_starter")
    starts = {k for k, actions in grants.items() if any(a.startswith("states:") for a in actions)}
    assert starts == {machine}
    assert grants[machine] == {"states:StartExecution"}


def test_state_machine_invokes_only_the_steps_function_and_parks_in_the_intake_dlq(synth: Synth) -> None:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    steps_id, _ = function_by_name(synth, "initiation_steps")
    dlq = _logical(synth, "AWS::SQS::Queue", "QueuesIntakeDlq")
    invoked, sent = set(), set()
    for statement in role_statements(synth, role_id):
        actions = set(as_list(statement["Action"]))
        targets = {_target(t) for t in as_list(statement["Resource"])}
        if any(a.startswith("lambda:") for a in actions):
            assert actions == {"lambda:InvokeFunction"}
            invoked |= targets
        if "sqs:SendMessage" in actions:
            sent |= targets
    assert invoked == {steps_id}
    assert sent == {dlq}


@pytest.mark.parametrize(
    "function", ["crm_webhook", "transactions_api", "initiation_starter", "initiation_steps"]
)
def test_each_function_writes_only_its_own_log_group(synth: Synth, function: str) -> None:
    _, resource = function_by_name(synth, function)
    own = resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    log_targets = {
        k for k, actions in _grants(synth, function).items() if any(a.startswith("logs:") for a in actions)
    }
    assert log_targets == {own}


def _writes(synth: Synth, function: str, table_prefix: str) -> list[dict[str, Any]]:
    """The statements that let a function write (put, update, delete) the table."""
    table = _logical(synth, "AWS::DynamoDB::Table", table_prefix)
    _, resource = function_by_name(synth, function)
    return [
        s
        for s in role_statements(synth, resource["Properties"]["Role"]["Fn::GetAtt"][0])
        if {"Fn::GetAtt": [table, "Arn"]} in as_list(s["Resource"])
        and set(as_list(s["Action"])) & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    ]


def test_psa_webhook_only_records_deliveries_and_sends_to_the_posting_and_margin_queues(synth: Synth) -> None:
    idempotency = _logical(synth, "AWS::DynamoDB::Table", "TablesIdempotency")
    posting = _logical(synth, "AWS::SQS::Queue", "QueuesPostingQueue")
    margin = _logical(synth, "AWS::SQS::Queue", "QueuesMarginQueue")
    secret = _logical(synth, "AWS::SecretsManager::Secret", "SecretsPsaWebhook")
    grants = _data_grants(synth, "psa_webhook")
    assert set(grants) == {idempotency, posting, margin, secret}
    for queue in (posting, margin):
        assert "sqs:SendMessage" in grants[queue]
        assert grants[queue] <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


def test_the_sweep_writes_only_its_watermarks_and_reads_the_psa_secret(synth: Synth) -> None:
    writes = _writes(synth, "posting_sweep", "TablesLedger")
    assert len(writes) == 1
    assert writes[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SWEEP#*"]}}
    (secret,) = [
        k
        for k, v in synth.of_type("AWS::SecretsManager::Secret").items()
        if v["Properties"]["Name"] == "pshub/psa/kantata"
    ]
    grants = _data_grants(synth, "posting_sweep")
    secrets = {k for k in grants if synth.resources.get(k, {}).get("Type") == "AWS::SecretsManager::Secret"}
    assert secrets == {secret}


def test_the_consumer_writes_the_routing_table_only_for_concurrency_budget_leases(synth: Synth) -> None:
    writes = _writes(synth, "posting_consumer", "TablesRouting")
    assert len(writes) == 1
    assert as_list(writes[0]["Action"]) == ["dynamodb:UpdateItem"]
    assert writes[0]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["BUDGET#*"]}}


def test_the_consumer_reaches_the_psa_and_erp_secrets_but_no_webhook_or_crm_secret(synth: Synth) -> None:
    grants = _data_grants(synth, "posting_consumer")
    secrets = {k for k in grants if synth.resources.get(k, {}).get("Type") == "AWS::SecretsManager::Secret"}
    names = {synth.resources[k]["Properties"]["Name"] for k in secrets}
    erp = {f"pshub/erp/{s}" for s in synth.app.node.try_get_context("erpSystems")}
    assert names == {"pshub/psa/kantata", *erp}
    dlq = _logical(synth, "AWS::SQS::Queue", "QueuesPostingDlq")
    assert grants[dlq] <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


def test_the_worker_sync_writes_only_its_watermark_and_worker_transactions_and_reads_only_the_hcm_secret(
    synth: Synth,
) -> None:
    writes = _writes(synth, "worker_sync", "TablesLedger")
    assert len(writes) == 1
    assert writes[0]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SWEEP#*", "TX#worker:*"]}
    }
    grants = _data_grants(synth, "worker_sync")
    secrets = {k for k in grants if synth.resources.get(k, {}).get("Type") == "AWS::SecretsManager::Secret"}
    assert {synth.resources[k]["Properties"]["Name"] for k in secrets} == {"pshub/hcm/workday"}


def test_the_worker_sync_only_reads_the_planning_table_for_changes_due_today(synth: Synth) -> None:
    planning = _logical(synth, "AWS::DynamoDB::Table", "TablesPlanning")
    assert _data_grants(synth, "worker_sync")[planning] == {"dynamodb:Query", "dynamodb:BatchGetItem"}


def test_the_worker_consumer_reaches_the_psa_secret_only_and_sends_to_its_own_queues(synth: Synth) -> None:
    grants = _data_grants(synth, "worker_consumer")
    secrets = {k for k in grants if synth.resources.get(k, {}).get("Type") == "AWS::SecretsManager::Secret"}
    assert {synth.resources[k]["Properties"]["Name"] for k in secrets} == {"pshub/psa/kantata"}
    queues = {k for k in grants if synth.resources.get(k, {}).get("Type") == "AWS::SQS::Queue"}
    margin = _logical(synth, "AWS::SQS::Queue", "QueuesMarginQueue")
    assert queues == {
        _logical(synth, "AWS::SQS::Queue", "QueuesWorkersQueue"),
        _logical(synth, "AWS::SQS::Queue", "QueuesWorkersDlq"),
        margin,
    }
    assert "sqs:SendMessage" in grants[margin]
    assert not any(a in grants[margin] for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage"))


def test_the_worker_consumer_keeps_workers_for_margins_in_the_planning_table_without_deleting(
    synth: Synth,
) -> None:
    planning = _logical(synth, "AWS::DynamoDB::Table", "TablesPlanning")
    assert _data_grants(synth, "worker_consumer")[planning] == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",  # PlanningStore.workers
        "dynamodb:Query",  # PlanningStore.projects_of
        "dynamodb:PutItem",  # PlanningStore.put_worker
        "dynamodb:BatchWriteItem",  # PlanningStore.due_on
    }


# --- workforce margin -----------------------------------------------------------------------------------


def test_the_margin_consumer_reaches_exactly_its_tables_bus_queues_bucket_prefix_topic_and_psa_secret(
    synth: Synth,
) -> None:
    bucket = _logical(synth, "AWS::S3::Bucket", "AnalyticsBucket")
    topic = _logical(synth, "AWS::SNS::Topic", "MonitoringDeliveryManagers")
    expected = {
        _logical(synth, "AWS::DynamoDB::Table", "TablesPlanning"),
        _logical(synth, "AWS::DynamoDB::Table", "TablesLedger"),
        _logical(synth, "AWS::Events::EventBus", "EventsBus"),
        _logical(synth, "AWS::SQS::Queue", "QueuesMarginQueue"),  # its event source
        _logical(synth, "AWS::SQS::Queue", "QueuesMarginDlq"),
        _secret_named(synth, "pshub/psa/kantata"),
        _logical(synth, "AWS::KMS::Key", "MonitoringAlertsKey"),
        f"{bucket}/{MARGINS_PREFIX}/*",
        topic,
    }
    assert set(_data_grants(synth, "margin_consumer")) == expected
    grants = _data_grants(synth, "margin_consumer")
    assert grants[_logical(synth, "AWS::Events::EventBus", "EventsBus")] == {"events:PutEvents"}
    assert grants[_secret_named(synth, "pshub/psa/kantata")] <= {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    dlq = grants[_logical(synth, "AWS::SQS::Queue", "QueuesMarginDlq")]
    assert "sqs:SendMessage" in dlq
    assert dlq <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


def test_the_margin_consumer_may_only_put_objects_under_margins(synth: Synth) -> None:
    bucket = _logical(synth, "AWS::S3::Bucket", "AnalyticsBucket")
    grants = _data_grants(synth, "margin_consumer")
    on_bucket = {k: v for k, v in grants.items() if k.split("/")[0] == bucket}
    assert on_bucket == {f"{bucket}/{MARGINS_PREFIX}/*": {"s3:PutObject"}}
    # The prefix granted is the one the handler writes under.
    handler = (ROOT / "functions" / "margin_consumer" / "handler.py").read_text()
    assert f'export_key("{MARGINS_PREFIX}"' in handler


def test_the_margin_consumer_may_publish_to_the_delivery_managers_topic_only(synth: Synth) -> None:
    grants = _data_grants(synth, "margin_consumer")
    publishes = {k for k, actions in grants.items() if any(a.startswith("sns:") for a in actions)}
    assert publishes == {_logical(synth, "AWS::SNS::Topic", "MonitoringDeliveryManagers")}
    assert grants[next(iter(publishes))] == {"sns:Publish"}
    # The topic is encrypted: SNS uses the key on the publisher's behalf.
    assert grants[_logical(synth, "AWS::KMS::Key", "MonitoringAlertsKey")] == {
        "kms:GenerateDataKey*",
        "kms:Decrypt",
    }


def test_the_margin_consumer_reads_and_writes_the_planning_table_without_deleting(synth: Synth) -> None:
    planning = _logical(synth, "AWS::DynamoDB::Table", "TablesPlanning")
    assert _data_grants(synth, "margin_consumer")[planning] == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
    }


def test_the_margin_consumer_touches_only_its_own_transactions_in_the_ledger(synth: Synth) -> None:
    ledger = _logical(synth, "AWS::DynamoDB::Table", "TablesLedger")
    _, resource = function_by_name(synth, "margin_consumer")
    statements = [
        s
        for s in role_statements(synth, resource["Properties"]["Role"]["Fn::GetAtt"][0])
        if {"Fn::GetAtt": [ledger, "Arn"]} in as_list(s["Resource"])
    ]
    assert len(statements) == 1
    assert set(as_list(statements[0]["Action"])) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert statements[0]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TX#margin:*"]}
    }


def test_the_assignment_sweep_keeps_only_its_watermark_sends_to_the_margin_queue_and_reads_the_psa(
    synth: Synth,
) -> None:
    ledger = _logical(synth, "AWS::DynamoDB::Table", "TablesLedger")
    margin = _logical(synth, "AWS::SQS::Queue", "QueuesMarginQueue")
    psa = _secret_named(synth, "pshub/psa/kantata")
    grants = _data_grants(synth, "assignment_sweep")
    assert set(grants) == {ledger, margin, psa}
    assert grants[ledger] == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    (writes,) = _writes(synth, "assignment_sweep", "TablesLedger")
    assert writes["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SWEEP#assignments"]}}
    assert "sqs:SendMessage" in grants[margin]
    assert grants[margin] <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
